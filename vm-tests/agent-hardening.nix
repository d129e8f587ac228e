# The agent's hardening on a real system: `systemd-analyze security` exposure at or below
# 2.0, no listening socket, nothing written outside its state directory, and revoking it
# in the control plane stops it (exit status 3, not restarted).
{ pkgs, nixosModules, postgresql }:
let
  inherit (pkgs) lib;
in
pkgs.testers.runNixOSTest {
  name = "dbcrate-agent-hardening";

  nodes = {
    control = {
      imports = [ nixosModules.control ];
      services.dbcrate-control = {
        enable = true;
        masterKeyFile = "/run/keys/master-key";
        agentListen = "0.0.0.0:8444";
        openFirewall = true;
        tlsHostnames = [ "control" ];
      };
      systemd.services.dbcrate-control.wantedBy = lib.mkForce [ ];
      environment.systemPackages = [ pkgs.curl ];
    };
    db = {
      imports = [ nixosModules.agent ];
      services.dbcrate-agent = {
        enable = true;
        controlUrl = "https://control:8444";
        caFile = "/run/keys/control-ca.pem";
        enrolmentTokenFile = "/run/keys/enrolment-token";
        postgresqlPackages = [ postgresql ];
      };
      systemd.services.dbcrate-agent.wantedBy = lib.mkForce [ ];
      systemd.services.dbcrate-agent-enroll.wantedBy = lib.mkForce [ ];
    };
  };

  testScript = ''
    import json, time
    ${builtins.readFile ./common.py}

    start_all()
    control.succeed("install -d -m 0700 /run/keys && (echo -n mk1:; head -c 32 /dev/urandom | base64) > /run/keys/master-key && chmod 0600 /run/keys/master-key")
    control.succeed("systemctl start dbcrate-control")
    control.wait_for_open_port(8444)
    api, org = owner_session(control)
    token = api.call("POST", f"/api/v1/orgs/{org}/enrolment-tokens", {"name": "db"})["token"]
    db.succeed(f"install -d -m 0700 /run/keys && echo -n {token} > /run/keys/enrolment-token")
    db.copy_from_host(control.copy_from_vm("/var/lib/dbcrate-control/tls/cert.pem", ""), "/run/keys/control-ca.pem")
    db.succeed("touch /tmp/before && sleep 1")
    db.succeed("systemctl start dbcrate-agent")
    db.wait_for_unit("dbcrate-agent.service")

    with subtest("exposure at or below 2.0"):
        line = db.succeed("systemd-analyze security dbcrate-agent.service | tail -n 1")
        exposure = float(line.split("exposure level for dbcrate-agent.service:")[1].split()[0])
        assert exposure <= 2.0, line

    with subtest("identity 0700/0600, owned by _dbcrate"):
        db.succeed("test \"$(stat -c '%U %a' /var/lib/dbcrate)\" = '_dbcrate 700'")
        db.succeed("test \"$(stat -c '%U %a' /var/lib/dbcrate/identity)\" = '_dbcrate 700'")
        db.succeed("! find /var/lib/dbcrate/identity -type f ! -perm 600 | grep .")

    with subtest("no listening socket"):
        pid = db.succeed("systemctl show -p MainPID --value dbcrate-agent").strip()
        db.succeed(f"! ss -H -l -p | grep 'pid={pid},'")

    with subtest("writes nothing outside its state directory"):
        time.sleep(10)
        db.succeed("! find / -xdev -newer /tmp/before -user _dbcrate -not -path '/var/lib/dbcrate*' -not -path '/proc/*' | grep .")

    with subtest("revocation stops it"):
        agent = api.call("GET", f"/api/v1/orgs/{org}/agents")["items"][0]["id"]
        api.call("POST", f"/api/v1/orgs/{org}/agents/{agent}/revoke", {})
        db.wait_until_succeeds("systemctl show -p ExecMainStatus --value dbcrate-agent | grep -x 3", timeout=600)
        db.succeed("test \"$(systemctl show -p ActiveState --value dbcrate-agent)\" != active")
  '';
}
