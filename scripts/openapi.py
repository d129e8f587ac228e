"""Writes control/openapi.json, the API document the control plane serves.

Edit this file and run it (python3 scripts/openapi.py) when routes change; the control
plane test every_route_is_documented_and_every_documented_route_exists keeps the
document and the router in step.
"""
import json
import pathlib
def err(desc): return {"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
def ok(desc, schema=None, ctype="application/json"):
    r = {"description": desc}
    r["content"] = {ctype: {"schema": schema or {"type": "object"}}}
    return r
def body(props, required):
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False, "required": required, "properties": props}}}}
S = {"type": "string"}
secret = {"type": "string", "format": "password"}
org_p = {"name": "org", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^org_[0-9a-f]{32}$"}}
user_p = {"name": "user", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^usr_[0-9a-f]{32}$"}}
inv_p = {"name": "invitation", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^inv_[0-9a-f]{32}$"}}
tok_p = {"name": "token", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^tok_[0-9a-f]{32}$"}}
common = {
  "401": err("not_signed_in: no or ended session, or unknown/expired/revoked token"),
  "403": err("password_change_required, forbidden (role too low or a token where a person is needed), csrf_token_invalid"),
}
common_no403 = {k: v for k, v in common.items() if k != "403"}
org_common = dict(common, **{"404": err("not_found: no such organisation or object, or not yours")})
body_errs = {
  "400": err("malformed_json"),
  "413": err("body_too_large"),
  "415": err("unsupported_media_type"),
  "422": err("invalid_body (unknown field, wrong type) or invalid_input"),
}
def op(summary, role, responses, req=None, params=None, security=True):
    o = {"summary": summary, "description": "Who: " + role, "responses": responses}
    if req: o["requestBody"] = req
    if params: o["parameters"] = params
    if not security: o["security"] = []
    return o
paths = {
 "/api/v1/openapi.json": {"get": op("This document", "anyone", {"200": ok("The OpenAPI document")}, security=False)},
 "/api/v1/session": {
   "post": op("Sign in; sets the session cookie (__Host-dbcrate_session) and returns the CSRF token", "anyone",
      dict({"200": ok("Signed in", {"$ref": "#/components/schemas/Me"}),
            "401": err("wrong_credentials, second_factor_required, second_factor_invalid"),
            "429": err("throttled: too many failures for the account or address")}, **body_errs),
      body({"email": S, "password": secret, "second_factor": secret}, ["email", "password"]), security=False),
   "get": op("The signed-in person", "a person (also with a one-time password)", dict({"200": ok("Me", {"$ref": "#/components/schemas/Me"})}, **common)),
   "delete": op("Sign out: revokes the session and clears the cookie", "a person", dict({"200": ok("Signed out")}, **common)),
 },
 "/api/v1/session/second-factor": {"post": op("Check a second-factor code now (step-up), for operations that need one in the last 5 minutes", "a person",
      dict({"200": ok("Checked"), "401": err("second_factor_invalid"), "429": err("throttled")}, **common, **body_errs),
      body({"code": secret}, ["code"]))},
 "/api/v1/account/password": {"post": op("Change one's own password (ends one's other sessions)", "a person (also with a one-time password)",
      dict({"200": ok("Changed"), "401": err("wrong_credentials: the current password is wrong"), "422": err("invalid_input: password policy (12+ characters)")}, **common, **{k: v for k, v in body_errs.items() if k != "422"}),
      body({"current_password": secret, "new_password": secret}, ["current_password", "new_password"]))},
 "/api/v1/account/second-factor": {"post": op("Start TOTP enrolment (the password again): the seed and otpauth:// URI (for a QR code), shown once", "a person",
      dict({"200": ok("Pending enrolment", {"type": "object", "properties": {"secret": S, "otpauth_uri": S}}), "401": err("wrong_credentials: the password is wrong"), "409": err("conflict: a second factor is enrolled already"), "429": err("throttled")}, **common, **body_errs),
      body({"password": secret}, ["password"]))},
 "/api/v1/account/second-factor/confirm": {"post": op("Confirm enrolment with a code from the app and the password; returns 10 recovery codes, shown once (not a step-up)", "a person",
      dict({"200": ok("Enabled", {"type": "object", "properties": {"enabled": {"type": "boolean"}, "recovery_codes": {"type": "array", "items": S}}}), "401": err("second_factor_invalid or wrong_credentials"), "429": err("throttled")}, **common, **body_errs),
      body({"code": secret, "password": secret}, ["code", "password"]))},
 "/api/v1/account/second-factor/disable": {"post": op("Turn the second factor off (password and a current code or recovery code)", "a person",
      dict({"200": ok("Disabled"), "401": err("wrong_credentials or second_factor_invalid"), "409": err("conflict: none enrolled"), "429": err("throttled")}, **common, **body_errs),
      body({"code": secret, "password": secret}, ["code", "password"]))},
 "/api/v1/orgs": {"get": op("The caller's organisations and role in each (with key_mode: managed or customer_sealed)", "a person or token", dict({"200": ok("Organisations", {"$ref": "#/components/schemas/List"})}, **common))},
 "/api/v1/orgs/{org}": {"get": op("One organisation (id, name, age recipient, caller's role, key_mode: managed or customer_sealed)", "viewer+", dict({"200": ok("Organisation")}, **org_common), params=[org_p])},
 "/api/v1/orgs/{org}/recovery-key": {"post": op("Export the organisation's private key as an AGE-SECRET-KEY-1 identity file (audited)", "owner, as a person, with a second factor checked in the last 5 minutes",
      dict({"200": ok("The identity file", {"type": "string"}, "text/plain"), "403": err("recent_second_factor_required, forbidden, csrf_token_invalid, password_change_required"),
            "409": err("customer_passphrase_required: the organisation key is customer-sealed; send {\"passphrase\": …}"),
            "422": err("customer_passphrase_invalid: not the organisation's passphrase (audited); invalid_body"), "429": err("throttled: too many wrong passphrases; wait 15 minutes")},
           **{k: v for k, v in org_common.items() if k != "403"}),
      dict(body({"passphrase": secret}, []), required=False), params=[org_p])},
 "/api/v1/orgs/{org}/customer-seal": {"post": op("Customer-seal the organisation key: seal the private key under a passphrase only the customer holds (Argon2id + XChaCha20-Poly1305) and delete the plain envelope copy, so the database and master key no longer open it. Managed restores and recovery-key exports then need the passphrase; unattended restores are not possible. Audited as org.key.customer_seal.enable", "owner, as a person, with a second factor checked in the last 5 minutes",
      dict({"200": ok("Sealed", {"type": "object", "properties": {"key_mode": S}}), "403": err("recent_second_factor_required, forbidden, csrf_token_invalid, password_change_required"),
            "409": err("conflict: customer-sealed already")}, **{k: v for k, v in org_common.items() if k != "403"}, **{k: v for k, v in body_errs.items() if k != "422"},
           **{"422": err("invalid_input: passphrase shorter than 16 characters or longer than 1024 bytes; invalid_body")}),
      body({"passphrase": dict(secret, minLength=16)}, ["passphrase"]), params=[org_p])},
 "/api/v1/orgs/{org}/customer-seal/disable": {"post": op("End customer sealing: the organisation key goes back under the master key alone. Audited as org.key.customer_seal.disable", "owner, as a person, with a second factor checked in the last 5 minutes",
      dict({"200": ok("Managed again", {"type": "object", "properties": {"key_mode": S}}), "403": err("recent_second_factor_required, forbidden, csrf_token_invalid, password_change_required"),
            "409": err("conflict: not customer-sealed"), "429": err("throttled: too many wrong passphrases; wait 15 minutes")},
           **{k: v for k, v in org_common.items() if k != "403"}, **{k: v for k, v in body_errs.items() if k != "422"},
           **{"422": err("customer_passphrase_invalid: not the organisation's passphrase (audited); invalid_body")}),
      body({"passphrase": secret}, ["passphrase"]), params=[org_p])},
 "/api/v1/orgs/{org}/members": {
   "get": op("Members with e-mail and role", "viewer+", dict({"200": ok("Members", {"$ref": "#/components/schemas/List"})}, **org_common), params=[org_p]),
   "post": op("Invite a person: an invitation with a one-time token (dbci_…, shown once) for them to accept. The answer is the same whether or not the address has an account; nobody is a member until they accept", "admin+ as a person; nobody invites above their own role (only owners invite owners)",
      dict({"201": ok("Invited", {"$ref": "#/components/schemas/Invitation"}), "409": err("conflict: a member here already, or a pending invitation here already")}, **org_common, **body_errs),
      body({"email": S, "role": {"type": "string", "enum": ["owner", "admin", "operator", "viewer"]}, "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 30, "default": 7}}, ["email", "role"]), params=[org_p]),
 },
 "/api/v1/orgs/{org}/members/{user}": {
   "patch": op("Change a member's role", "admin+ as a person; only owners touch owners; the last owner stays",
      dict({"200": ok("Changed"), "409": err("conflict: the last owner")}, **org_common, **body_errs),
      body({"role": {"type": "string", "enum": ["owner", "admin", "operator", "viewer"]}}, ["role"]), params=[org_p, user_p]),
   "delete": op("Remove a member (the account stays)", "admin+ as a person; only owners touch owners; the last owner stays",
      dict({"200": ok("Removed"), "409": err("conflict: the last owner")}, **org_common), params=[org_p, user_p]),
 },
 "/api/v1/orgs/{org}/members/{user}/password-reset": {"post": op("Give a member a one-time password (shown once) and end their sessions", "admin+ as a person; not for one's own account, owners only by owners, only people in no other organisation",
      dict({"200": ok("Reset", {"type": "object", "properties": {"one_time_password": S}}), "409": err("conflict: member of other organisations"), "422": err("invalid_input: one's own account")}, **org_common), params=[org_p, user_p])},
 "/api/v1/orgs/{org}/invitations": {"get": op("The organisation's invitations, newest first, with status pending, accepted, revoked or expired (never their tokens)", "admin+",
      dict({"200": ok("Invitations", {"$ref": "#/components/schemas/List"})}, **org_common), params=[org_p])},
 "/api/v1/orgs/{org}/invitations/{invitation}": {"delete": op("Revoke an invitation: its token stops working", "admin+ as a person; invitations to be owner only by owners",
      dict({"200": ok("Revoked"), "409": err("conflict: accepted or revoked already")}, **org_common), params=[org_p, inv_p])},
 "/api/v1/invitations/accept": {"post": op("Accept an invitation as the signed-in person, whose e-mail address it is for: membership with the invited role", "a person whose address the invitation is for",
      dict({"200": ok("Joined", {"$ref": "#/components/schemas/Joined"}), "403": err("forbidden: the invitation is for another address; password_change_required, csrf_token_invalid"),
            "409": err("conflict: the invitation was used, revoked or has expired, or a member already"), "422": err("invalid_input: the token is malformed or unknown; invalid_body")}, **common_no403, **{k: v for k, v in body_errs.items() if k != "422"}),
      body({"token": secret}, ["token"]))},
 "/api/v1/invitations/create-account": {"post": op("Accept an invitation for an address that has no account: creates the account with the person's own password (then sign in)", "anyone with an invitation token",
      dict({"201": ok("Account created and joined", {"$ref": "#/components/schemas/Joined"}),
            "409": err("conflict: the invitation was used, revoked or has expired, or the address has an account (sign in and accept instead)"), "422": err("invalid_input: the token is malformed or unknown, or new_password breaks the password policy (12+ characters); invalid_body")}, **{k: v for k, v in body_errs.items() if k != "422"}),
      body({"token": secret, "new_password": secret}, ["token", "new_password"]), security=False)},
 "/api/v1/orgs/{org}/api-tokens": {
   "get": op("The organisation's API tokens (never their values)", "admin+", dict({"200": ok("Tokens", {"$ref": "#/components/schemas/List"})}, **org_common), params=[org_p]),
   "post": op("Create an API token (dbct_…, shown once) with a role no higher than the creator's", "admin+ as a person",
      dict({"201": ok("Created", {"type": "object", "properties": {"id": S, "token": S}})}, **org_common, **body_errs),
      body({"name": S, "role": {"type": "string", "enum": ["owner", "admin", "operator", "viewer"]}, "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 366}}, ["name", "role"]), params=[org_p]),
 },
 "/api/v1/orgs/{org}/api-tokens/{token}": {"delete": op("Revoke an API token", "admin+ as a person", dict({"200": ok("Revoked")}, **org_common), params=[org_p, tok_p])},
 "/api/v1/orgs/{org}/audit": {"get": op("The organisation's audit log: JSON pages with a next_after cursor, or a whole export as JSON lines or CSV", "admin+",
      dict({"200": {"description": "Rows", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AuditPage"}}, "application/x-ndjson": {"schema": S}, "text/csv": {"schema": S}}},
            "400": err("invalid_query"), "422": err("invalid_input: a filter value")}, **org_common),
      params=[org_p] + [{"name": n, "in": "query", "required": False, "schema": sch, "description": d} for n, sch, d in [
        ("from", S, "at or after, UTC YYYY-MM-DDTHH:MM:SSZ"), ("to", S, "before, same form"),
        ("action", S, "exact action, e.g. member.add"), ("actor", S, "exact actor, e.g. user:usr_…"),
        ("after", {"type": "integer"}, "sequence number cursor (next_after of the previous page)"),
        ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "rows per page (json only, default 100)"),
        ("format", {"type": "string", "enum": ["json", "jsonl", "csv"]}, "json (default) pages; jsonl and csv export every matching row")]])},
}
agent_p = {"name": "agent", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^agt_[0-9a-f]{32}$"}}
paths["/api/v1/orgs/{org}/enrolment-tokens"] = {"post": op("Create a one-time agent enrolment token (dbce_…, shown once; default 1 hour)", "operator+ (person or token)",
      dict({"201": ok("Created", {"type": "object", "properties": {"id": S, "token": S, "expires_at": {"type": "integer"}}})}, **org_common, **body_errs),
      body({"name": S, "expires_in_secs": {"type": "integer", "minimum": 60, "maximum": 604800}}, ["name"]), params=[org_p])}
paths["/api/v1/orgs/{org}/agents"] = {"get": op("The organisation's agents", "viewer+", dict({"200": ok("Agents", {"$ref": "#/components/schemas/List"})}, **org_common), params=[org_p])}
paths["/api/v1/orgs/{org}/agents/{agent}/revoke"] = {"post": op("Revoke an agent: its certificates go into the organisation's signed CRL and are refused at the TLS layer from the next connection", "admin+ (person or token)",
      dict({"200": ok("Revoked")}, **org_common), params=[org_p, agent_p])}
db_p = {"name": "database", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^dbs_[0-9a-f]{32}$"}}
I = {"type": "integer"}
paths["/api/v1/orgs/{org}/databases"] = {
  "get": op("The organisation's databases (never their passwords)", "viewer+", dict({"200": ok("Databases", {"$ref": "#/components/schemas/List"})}, **org_common), params=[org_p]),
  "post": op("Add a database the given agent reaches; the password is sealed", "admin+ (person or token)",
      dict({"201": ok("Added"), "409": err("conflict: the name exists")}, **org_common, **body_errs),
      body({"name": S, "host": S, "port": I, "dbname": S, "username": S, "tls_mode": {"type": "string", "enum": ["disable", "prefer", "require", "verify-ca", "verify-full"]},
            "password": secret, "agent_id": S}, ["name", "host", "dbname", "username", "agent_id"]), params=[org_p]),
}
paths["/api/v1/orgs/{org}/databases/{database}"] = {"get": op("One database", "viewer+", dict({"200": ok("Database")}, **org_common), params=[org_p, db_p])}
paths["/api/v1/orgs/{org}/schedules"] = {
  "get": op("The organisation's schedules with their next run", "viewer+", dict({"200": ok("Schedules", {"$ref": "#/components/schemas/List"})}, **org_common), params=[org_p]),
  "post": op("Add a schedule: cron (5 fields or @daily…) in an IANA time zone, with GFS retention counts", "operator+ (person or token)",
      dict({"201": ok("Added")}, **org_common, **body_errs),
      body({"database_id": S, "destination_id": S, "cron": S, "time_zone": S, "keep_last": I, "keep_daily": I, "keep_weekly": I, "keep_monthly": I, "keep_yearly": I},
           ["database_id", "destination_id", "cron"]), params=[org_p]),
}
paths["/api/v1/orgs/{org}/destinations"] = {
  "get": op("The organisation's destinations (settings; never credentials)", "viewer+", dict({"200": ok("Destinations", {"$ref": "#/components/schemas/List"})}, **org_common), params=[org_p]),
  "post": op("Add a destination after a list / write / read / delete probe with the given settings and credentials; writes README-dbcrate.txt at the prefix. A failed probe saves nothing and answers each step's outcome in error.details.probe", "admin+ (person or token)",
      dict({"201": ok("Added (with each probe step's outcome)"), "409": err("conflict: the name exists"), "422": err("probe_failed (error.details.probe lists each step), invalid_input, invalid_body")}, **org_common, **{k: v for k, v in body_errs.items() if k != "422"}),
      body({"name": S, "kind": {"type": "string", "enum": ["s3", "sftp", "directory"]},
            "settings": {"type": "object", "description": "s3: endpoint, region, bucket, prefix, path_style; sftp: host, port, user, path, host_key; directory: path"},
            "credentials": {"type": "object", "description": "s3: access_key_id, secret_access_key; sftp: private_key; directory: none"}}, ["name", "kind", "settings"]), params=[org_p]),
}
sch_p = {"name": "schedule", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^sch_[0-9a-f]{32}$"}}
paths["/api/v1/orgs/{org}/schedules/{schedule}/run"] = {"post": op("Run now: queue one backup job for the schedule at once", "operator+ (person or token)",
      dict({"202": ok("Queued", {"type": "object", "properties": {"job": S}})}, **org_common), params=[org_p, sch_p])}
paths["/api/v1/orgs/{org}/backups"] = {"get": op("The organisation's recorded backups, newest first (object key, stored and dump sizes, SHA-256, times and duration, versions; deleted_at once retention removed it)", "viewer+",
      dict({"200": ok("Backups", {"$ref": "#/components/schemas/List"})}, **org_common), params=[org_p])}
paths["/api/v1/orgs/{org}/restores"] = {"post": op("Managed restore: queue a restore of a recorded backup into a target database (its agent gets only this backup's file key)", "admin+ (person or token)",
      dict({"202": ok("Queued", {"type": "object", "properties": {"job": S}})}, **org_common, **{k: v for k, v in body_errs.items() if k != "422"},
           **{"409": err("customer_passphrase_required: the organisation key is customer-sealed; send {\"passphrase\": …} (unattended restores are not possible in that mode)"),
              "422": err("invalid_body (unknown field, wrong type), invalid_input, or customer_passphrase_invalid (audited)"), "429": err("throttled: too many wrong passphrases; wait 15 minutes")}),
      body({"backup_id": S, "target_database_id": S, "passphrase": dict(secret, description="only for a customer-sealed organisation key")}, ["backup_id", "target_database_id"]), params=[org_p])}
mtls = [{"agentCertificate": []}]
agent_errs = {"401": err("client_certificate_required: no, unknown or revoked agent certificate")}
paths["/agent/v1/enroll"] = {"post": dict(op("Agent listener: enrol with a one-time token and a CSR; answers the certificate chain and the deployment root", "anyone with an enrolment token",
      dict({"200": ok("Enrolled", {"type": "object", "properties": {"org_id": S, "agent_id": S, "certificate_chain": S, "root_ca": S, "not_after": {"type": "integer"}}}),
            "401": err("not_signed_in: token unknown, used, expired or of another organisation"), "422": err("invalid_input: bad CSR (garbage, oversized, CA:true, unknown extensions)")}, **{k: v for k, v in body_errs.items() if k != "422"}),
      body({"token": secret, "csr": S, "name": S, "org_id": S}, ["token", "csr", "name"]), security=False))}
paths["/agent/v1/certificate/renew"] = {"post": dict(op("Agent listener: a fresh certificate for a new key (CSR)", "an agent (client certificate)",
      dict({"200": ok("Renewed")}, **agent_errs, **body_errs), body({"csr": S}, ["csr"])), security=mtls)}
paths["/agent/v1/config"] = {"get": dict(op("Agent listener: the organisation's recipient and the agent's intervals", "an agent (client certificate)", dict({"200": ok("Config")}, **agent_errs)), security=mtls)}
job_p = {"name": "job", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^job_[0-9a-f]{32}$"}}
paths["/agent/v1/jobs/next"] = {"get": dict(op("Agent listener: claim the next job (long poll up to the poll interval; {\"job\": null} when none)", "an agent (client certificate)",
      dict({"200": ok("A job or null")}, **agent_errs)), security=mtls)}
paths["/agent/v1/jobs/{job}/credentials"] = {"get": dict(op("Agent listener: the running job's credentials (database password, destination credentials, recipients), answered once", "the agent the job is assigned to, while it runs",
      dict({"200": ok("Credentials"), "404": err("not_found: not this agent's running job"), "409": err("conflict: handed out already")}, **agent_errs), params=[job_p]), security=mtls)}
paths["/agent/v1/jobs/{job}/progress"] = {"post": dict(op("Agent listener: heartbeat (bytes, phase); renews the job's lease", "the agent the job is assigned to",
      dict({"200": ok("Lease renewed"), "404": err("not_found")}, **agent_errs, **body_errs), body({"bytes": {"type": "integer"}, "phase": S}, ["bytes", "phase"]), params=[job_p]), security=mtls)}
paths["/agent/v1/jobs/{job}/complete"] = {"post": dict(op("Agent listener: the job's final report; a successful backup is recorded", "the agent the job is assigned to",
      dict({"200": ok("Recorded"), "404": err("not_found")}, **agent_errs, **body_errs),
      body({"succeeded": {"type": "boolean"}, "object_key": S, "size": {"type": "integer"}, "sha256": S, "pg_server_version": S, "pg_dump_version": S, "error": S}, ["succeeded"]), params=[job_p]), security=mtls)}
paths["/agent/v1/crl"] = {"get": dict(op("Agent listener: the organisation's signed CRL (DER)", "an agent (client certificate)", dict({"200": ok("CRL", {"type": "string", "format": "binary"}, "application/pkix-crl")}, **agent_errs)), security=mtls)}

doc = {
 "openapi": "3.1.0",
 "info": {"title": "dbcrate control plane API", "version": "1",
   "description": "JSON over HTTPS. Errors are {\"error\": {\"code\", \"message\"}} with a stable code. Browsers authenticate with the session cookie and must send X-CSRF-Token on POST/PATCH/DELETE; programs send Authorization: Bearer dbct_…. Another organisation's objects are 404, like missing ones. Unknown JSON fields are refused; bodies are capped at 64 KiB."},
 "servers": [{"url": "https://localhost:8443"}],
 "security": [{"session": []}, {"token": []}],
 "paths": paths,
 "components": {
   "securitySchemes": {
     "session": {"type": "apiKey", "in": "cookie", "name": "__Host-dbcrate_session"},
     "token": {"type": "http", "scheme": "bearer", "description": "an API token, dbct_…"},
     "agentCertificate": {"type": "mutualTLS", "description": "the agent's client certificate, on the agent listener (DBCRATE_AGENT_LISTEN)"}},
   "schemas": {
     "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string", "enum": [
        "invalid_input", "not_signed_in", "wrong_credentials", "second_factor_required", "second_factor_invalid", "recent_second_factor_required",
        "password_change_required", "forbidden", "not_found", "conflict", "throttled", "csrf_token_invalid", "internal",
        "client_certificate_required", "probe_failed", "malformed_json", "invalid_body", "body_too_large", "unsupported_media_type", "unreadable_body", "invalid_query", "no_such_route", "method_not_allowed"]}, "message": {"type": "string"}}}}},
     "Me": {"type": "object", "properties": {"user_id": S, "email": S, "second_factor": {"type": "boolean"}, "recovery_codes_left": {"type": "integer"}, "must_change_password": {"type": "boolean"}, "csrf_token": S}},
     "Invitation": {"type": "object", "properties": {"id": S, "email": S, "role": S, "invited_by": S, "created_at": {"type": "integer"}, "expires_at": {"type": "integer"},
        "status": {"type": "string", "enum": ["pending", "accepted", "revoked", "expired"]}, "accepted_at": {"type": ["integer", "null"]}, "revoked_at": {"type": ["integer", "null"]},
        "token": {"type": "string", "description": "the one-time token (dbci_…), in the answer that creates the invitation only"}, "next": S}},
     "Joined": {"type": "object", "properties": {"invitation_id": S, "org_id": S, "role": S, "user_id": S}},
     "List": {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}}}},
     "AuditPage": {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {
        "seq": {"type": "integer"}, "at": S, "actor": S, "action": S, "target": S, "details": {"type": "object"}, "prev_hash": S, "hash": S}}}, "next_after": {"type": ["integer", "null"]}}},
   }},
}
OUT = pathlib.Path(__file__).resolve().parent.parent / "control" / "openapi.json"
json.dump(doc, open(OUT, "w"), indent=2)
open(OUT, "a").write("\n")
