#!/usr/bin/env python3
"""Drive a running odoo-fake with third-party Python clients, used unchanged.

Clients: OdooRPC (JSON-RPC: /web/webclient/version_info, /jsonrpc common.login,
object.execute / execute_kw) and odoo-client-lib (/jsonrpc common.login,
object.execute_kw; with --api-key on Odoo 19 also its JSON-2 connector:
/doc-bearer/<model>.json and /json/2/<model>/<method>).

Usage:
    python-clients-smoke.py URL_OR_PORT [--db demo] [--login admin]
                            [--password admin] [--api-key KEY]

Needs: pip install OdooRPC odoo-client-lib
Prints each call it makes; exits 0 when all passed, 1 on the first failure,
2 when the clients are not installed or the arguments are wrong.
"""
import argparse
import sys
import traceback
from urllib.parse import urlparse


def target(arg):
    """Host and port from a URL (http://127.0.0.1:8069) or a bare port."""
    if arg.isdigit():
        return "127.0.0.1", int(arg)
    url = urlparse(arg if "://" in arg else "http://" + arg)
    if not url.hostname or not url.port:
        raise SystemExit(f"cannot read host and port from {arg!r}")
    return url.hostname, url.port


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def step(label, fn):
    value = fn()
    shown = repr(value)
    if len(shown) > 160:
        shown = shown[:157] + "..."
    print(f"  ok  {label} -> {shown}", flush=True)
    return value


def odoorpc_smoke(host, port, db, login, password):
    import odoorpc

    print(f"OdooRPC {getattr(odoorpc, '__version__', '?')} against {host}:{port}")
    odoo = step("odoorpc.ODOO() [POST /web/webclient/version_info]",
                lambda: odoorpc.ODOO(host, port=port))
    step("odoo.version", lambda: odoo.version)
    step("odoo.db.list() [db.list]", lambda: odoo.db.list())
    step(f"odoo.login({db!r}, {login!r}, ***) [common.login, res.users.context_get]",
         lambda: odoo.login(db, login, password))
    name = step("odoo.env.user.name [res.users fields_get + read]", lambda: odoo.env.user.name)
    check(isinstance(name, str) and name, "user name is empty")
    step("'res.partner' in odoo.env [ir.model search]", lambda: "res.partner" in odoo.env)
    Partner = step("odoo.env['res.partner'] [fields_get]", lambda: odoo.env["res.partner"])
    ids = step("Partner.search([])", lambda: Partner.search([]))
    check(ids, "no partner found")
    rows = step("Partner.read(ids, ['name'])", lambda: Partner.read(ids, ["name"]))
    check(len(rows) == len(ids) and all("name" in r for r in rows), "read answered other rows")
    new_id = step("Partner.create({'name': 'x'})", lambda: Partner.create({"name": "x"}))
    check(isinstance(new_id, int), "create did not answer an id")
    record = Partner.browse(new_id)
    check(step("Partner.browse(id).name", lambda: record.name) == "x", "created name differs")
    step("record.write({'name': 'y'})", lambda: record.write({"name": "y"}))
    step("Partner.search_count([('name', '=', 'y')])",
         lambda: Partner.search_count([("name", "=", "y")]))
    step("Partner.unlink([id])", lambda: Partner.unlink([new_id]))
    step("odoo.logout()", lambda: odoo.logout())


def odoolib_smoke(host, port, db, login, password, api_key):
    import odoolib

    print(f"odoo-client-lib against {host}:{port}")
    conn = odoolib.get_connection(hostname=host, port=port, database=db,
                                  login=login, password=password, protocol="jsonrpc")
    partners = conn.get_model("res.partner")
    rows = step("m.search_read([], ['name']) [common.login, search, read]",
                lambda: partners.search_read([], ["name"]))
    check(rows and all("name" in r for r in rows), "search_read answered no names")
    step("c.get_user_context() [res.users.context_get]", lambda: conn.get_user_context())
    new_id = step("m.create({'name': 'z'})", lambda: partners.create({"name": "z"}))
    got = step("m.read(id, ['name'])", lambda: partners.read(new_id, ["name"]))
    check(got and got.get("name") == "z", "read after create differs")
    if api_key:
        key_conn = odoolib.get_connection(hostname=host, port=port, database=db,
                                          login=login, password=api_key, protocol="jsonrpc")
        step("jsonrpc with the API key as password: search_count",
             lambda: key_conn.get_model("res.partner").search_count([]))
        version = odoolib.get_connection(hostname=host, port=port, protocol="jsonrpc") \
            .get_service("common").version()
        if str(version.get("server_version", "")).startswith("19"):
            j2 = odoolib.get_connection(hostname=host, port=port, database=db,
                                        password=api_key, protocol="json2")
            m = j2.get_model("res.partner")
            found = step("json2 search_read([], ['name'])",
                         lambda: m.search_read(domain=[], fields=["name"]))
            check(found and "name" in found[0], "json2 search_read answered no names")
            step("json2 get_user_context()", lambda: j2.get_user_context())
            step("json2 search([('is_company', '=', True)]) [doc-bearer introspection]",
                 lambda: m.search([("is_company", "=", True)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="URL (http://127.0.0.1:8069) or port of odoo-fake")
    parser.add_argument("--db", default="demo")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    host, port = target(args.target)
    try:
        import odoorpc  # noqa: F401
        import odoolib  # noqa: F401
    except ImportError as exc:
        print(f"missing client library: {exc}; run: pip install OdooRPC odoo-client-lib",
              file=sys.stderr)
        return 2
    failed = 0
    for name, run in (
        ("OdooRPC", lambda: odoorpc_smoke(host, port, args.db, args.login, args.password)),
        ("odoo-client-lib", lambda: odoolib_smoke(host, port, args.db, args.login,
                                                  args.password, args.api_key)),
    ):
        try:
            run()
            print(f"PASS {name}")
        except Exception:  # noqa: BLE001 - report whatever the client raised
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
    print(f"{2 - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
