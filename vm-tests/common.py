# Helpers shared by the VM tests: a small client of the control plane's API, run on the
# control node with curl (the test driver's Python has no TLS client of its own there).
import base64
import hashlib
import hmac
import json
import struct
import time

CA = "/var/lib/dbcrate-control/tls/cert.pem"


class Api:
    def __init__(self, node, base="https://127.0.0.1:8443"):
        self.node, self.base, self.csrf = node, base, None

    def call(self, method, path, body=None, want=None):
        args = f"-sS -o /tmp/body -w '%{{http_code}}' --cacert {CA} -b /tmp/jar -c /tmp/jar -X {method}"
        if self.csrf:
            args += f" -H 'X-CSRF-Token: {self.csrf}'"
        if body is not None:
            self.node.succeed(f"cat > /tmp/req <<'JSON'\n{json.dumps(body)}\nJSON")
            args += " -H 'Content-Type: application/json' --data-binary @/tmp/req"
        code = int(self.node.succeed(f"curl {args} {self.base}{path}"))
        text = self.node.succeed("cat /tmp/body")
        assert (200 <= code < 300) if want is None else code == want, f"{method} {path}: {code} {text}"
        return json.loads(text) if text.strip() else None


def totp(secret_b32, at=None):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((at or time.time()) // 30)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


def owner_session(control, email="owner@example.com"):
    """init, first sign-in, new password, TOTP and a step-up: what the export needs."""
    out = control.succeed("cd /var/lib/dbcrate-control && sudo -u _dbcrate-control "
                          "env DBCRATE_MASTER_KEY_FILE=/run/keys/master-key DBCRATE_DATA_DIR=/var/lib/dbcrate-control "
                          f"dbcrate-control init --org Acme --owner {email}")
    org = out.split("(", 1)[1].split(")", 1)[0]
    otp = out.split("one-time password ", 1)[1].split()[0]
    api = Api(control)
    api.csrf = api.call("POST", "/api/v1/session", {"email": email, "password": otp})["csrf_token"]
    password = "correct horse battery staple 42"
    api.call("POST", "/api/v1/account/password", {"current_password": otp, "new_password": password})
    secret = api.call("POST", "/api/v1/account/second-factor", {"password": password})["secret"]
    api.call("POST", "/api/v1/account/second-factor/confirm", {"code": totp(secret), "password": password})
    time.sleep(31)  # a code is accepted once: the step-up needs the next one
    api.call("POST", "/api/v1/session/second-factor", {"code": totp(secret)})
    return api, org
