//! Gate names and dependencies: uniqueness, unknown names, cycles.

use std::collections::HashMap;

use crate::{Error, Result};

/// Checks that `names` are unique and non-empty, that every dependency names a gate,
/// and that there is no cycle. Returns each gate's dependencies as indices (deduplicated,
/// in the order written).
pub(crate) fn resolve(gates: &[(&str, &[String])]) -> Result<Vec<Vec<usize>>> {
    let mut index = HashMap::with_capacity(gates.len());
    for (i, (name, _)) in gates.iter().enumerate() {
        if index.insert(*name, i).is_some() {
            return Err(Error::DuplicateGate {
                name: (*name).to_owned(),
            });
        }
    }
    let mut deps = Vec::with_capacity(gates.len());
    for (name, depends_on) in gates {
        let mut mine: Vec<usize> = Vec::with_capacity(depends_on.len());
        for dependency in depends_on.iter() {
            let Some(&j) = index.get(dependency.as_str()) else {
                return Err(Error::UnknownDependency {
                    gate: (*name).to_owned(),
                    dependency: dependency.clone(),
                });
            };
            if !mine.contains(&j) {
                mine.push(j);
            }
        }
        deps.push(mine);
    }
    if let Some(cycle) = find_cycle(&deps) {
        return Err(Error::DependencyCycle {
            cycle: cycle.into_iter().map(|i| gates[i].0.to_owned()).collect(),
        });
    }
    Ok(deps)
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    New,
    OnStack,
    Done,
}

/// A cycle as a path of indices whose first element is repeated at the end.
fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    fn visit(
        node: usize,
        deps: &[Vec<usize>],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[node] = Mark::OnStack;
        stack.push(node);
        for &next in &deps[node] {
            match marks[next] {
                Mark::OnStack => {
                    let start = stack.iter().position(|&n| n == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next, deps, marks, stack) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[node] = Mark::Done;
        None
    }

    let mut marks = vec![Mark::New; deps.len()];
    let mut stack = Vec::new();
    for node in 0..deps.len() {
        if marks[node] == Mark::New {
            if let Some(cycle) = visit(node, deps, &mut marks, &mut stack) {
                return Some(cycle);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(gates: &[(&str, &[&str])]) -> Result<Vec<Vec<usize>>> {
        let owned: Vec<(&str, Vec<String>)> = gates
            .iter()
            .map(|(n, d)| (*n, d.iter().map(|s| (*s).to_owned()).collect()))
            .collect();
        let refs: Vec<(&str, &[String])> = owned.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        resolve(&refs)
    }

    #[test]
    fn resolves_indices_and_dedupes() {
        let deps = run(&[("a", &[]), ("b", &["a", "a"]), ("c", &["b", "a"])]).unwrap();
        assert_eq!(deps, vec![vec![], vec![0], vec![1, 0]]);
    }

    #[test]
    fn finds_cycles() {
        let err = run(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"])]).unwrap_err();
        match err {
            Error::DependencyCycle { cycle } => assert_eq!(cycle, ["a", "c", "b", "a"]),
            other => panic!("{other:?}"),
        }
        let err = run(&[("self", &["self"])]).unwrap_err();
        assert!(matches!(err, Error::DependencyCycle { cycle } if cycle == ["self", "self"]));
    }

    #[test]
    fn rejects_duplicates_and_unknown() {
        assert!(matches!(
            run(&[("a", &[]), ("a", &[])]),
            Err(Error::DuplicateGate { name }) if name == "a"
        ));
        assert!(matches!(
            run(&[("a", &["zz"])]),
            Err(Error::UnknownDependency { gate, dependency }) if gate == "a" && dependency == "zz"
        ));
    }
}
