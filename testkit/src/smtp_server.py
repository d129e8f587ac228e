# A real SMTP server for dbcrate's e-mail alert tests, on aiosmtpd (provisioned by
# scripts/provision-testdeps). Arguments: HOST PORT MODE CERT KEY USER PASSWORD OUTDIR.
# MODE is "starttls" (plain until STARTTLS, which is required before AUTH and MAIL) or
# "implicit" (TLS from the first byte). AUTH (PLAIN or LOGIN) with USER/PASSWORD is
# required. Each message is written to OUTDIR as NNNN.json: envelope, data, whether it
# came over TLS and authenticated.
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

host, port, mode, certfile, keyfile, user, password, outdir = sys.argv[1:9]


class Handler:
    async def handle_DATA(self, server, session, envelope):
        count = len([f for f in os.listdir(outdir) if f.endswith(".json")])
        path = os.path.join(outdir, "%04d.json" % count)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            # STARTTLS sets session.ssl; implicit TLS shows on the transport.
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
        }
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == user.encode()
        and auth_data.password == password.encode()
    )
    return AuthResult(success=ok, handled=False)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(certfile, keyfile)
common = dict(
    hostname=host,
    port=int(port),
    authenticator=authenticator,
    auth_required=True,
    server_hostname="localhost",
    ready_timeout=30,
)
if mode == "starttls":
    controller = Controller(
        Handler(), tls_context=context, require_starttls=True, auth_require_tls=True, **common
    )
else:
    controller = Controller(Handler(), ssl_context=context, auth_require_tls=False, **common)
controller.start()
print("ready", flush=True)
threading.Event().wait()
