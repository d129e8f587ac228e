# The release gate for one PostgreSQL major: a control plane (module), a database host
# running that major with the agent (module), Garage as S3 storage and an OpenSSH host
# for SFTP. The agent backs up to both; each object is fetched with a client that is not
# dbcrate (rclone, sftp), decrypted with stock age and the exported recovery key,
# `zstd -d`, `pg_restore`d into a fresh database of the same major and compared with the
# source by a canonical dump; then a managed restore through the agent, compared too.
{ pkgs, nixosModules, major, postgresql, garage }:
let
  inherit (pkgs) lib;
  net = "192.168.1.0/24"; # the test driver's VLAN 1
in
pkgs.testers.runNixOSTest {
  name = "dbcrate-release-gate-pg${major}";

  nodes = {
    control = {
      imports = [ nixosModules.control ];
      services.dbcrate-control = {
        enable = true;
        masterKeyFile = "/run/keys/master-key";
        listen = "0.0.0.0:8443";
        agentListen = "0.0.0.0:8444";
        openFirewall = true;
        tlsHostnames = [ "control" ];
        # Garage and sshd are on the test's private network.
        outboundAllow = [ net ];
      };
      # Started by the test once the master key exists.
      systemd.services.dbcrate-control.wantedBy = lib.mkForce [ ];
      environment.systemPackages = [ pkgs.curl pkgs.age pkgs.zstd pkgs.rclone pkgs.openssh postgresql ];
    };

    db = {
      imports = [ nixosModules.agent ];
      services.postgresql = {
        enable = true;
        package = postgresql;
        enableTCPIP = true;
        authentication = "host all all ${net} scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n";
      };
      services.dbcrate-agent = {
        enable = true;
        controlUrl = "https://control:8444";
        caFile = "/run/keys/control-ca.pem";
        enrolmentTokenFile = "/run/keys/enrolment-token";
        postgresqlPackages = [ postgresql ];
      };
      systemd.services.dbcrate-agent.wantedBy = lib.mkForce [ ];
      systemd.services.dbcrate-agent-enroll.wantedBy = lib.mkForce [ ];
      networking.firewall.allowedTCPPorts = [ 5432 ];
    };

    s3 = {
      services.garage = {
        enable = true;
        package = garage;
        settings = {
          replication_factor = 1;
          rpc_bind_addr = "[::]:3901";
          rpc_secret = "4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6";
          s3_api = { api_bind_addr = "[::]:3900"; s3_region = "garage"; };
        };
      };
      networking.firewall.allowedTCPPorts = [ 3900 ];
      virtualisation.diskSize = 2048;
    };

    sftp = {
      services.openssh.enable = true;
      users.users.backup = { isNormalUser = true; home = "/home/backup"; };
    };
  };

  testScript = ''
    import json, time
    ${builtins.readFile ./common.py}

    major = "${major}"
    results = []  # (destination, outcome, seconds)

    start_all()
    control.succeed("install -d -m 0700 /run/keys && (echo -n mk1:; head -c 32 /dev/urandom | base64) > /run/keys/master-key && chmod 0600 /run/keys/master-key")
    control.succeed("systemctl start dbcrate-control")
    control.wait_for_open_port(8443)
    control.wait_for_open_port(8444)
    api, org = owner_session(control)

    # Storage: a Garage bucket and key; an SFTP account with a key the control plane holds.
    s3.wait_for_unit("garage.service")
    s3.wait_for_open_port(3900)
    node_id = s3.succeed("garage status | awk '/NO ROLE|pending/ {print $1; exit}'").strip() or s3.succeed("garage node id -q | cut -d@ -f1").strip()
    s3.succeed(f"garage layout assign -z dc1 -c 1G {node_id} && garage layout apply --version 1")
    s3.succeed("garage bucket create backups && garage key create dbcrate")
    s3.succeed("garage bucket allow --read --write --owner backups --key dbcrate")
    info = s3.succeed("garage key info dbcrate --show-secret")
    key_id = info.split("Key ID:")[1].split()[0]
    key_secret = info.split("Secret key:")[1].split()[0]
    sftp.wait_for_unit("sshd.service")
    control.succeed("ssh-keygen -q -t ed25519 -N ''' -f /root/sftp_key")
    sftp.succeed("install -d -m 0700 -o backup /home/backup/.ssh /home/backup/dumps && chown backup /home/backup/dumps")
    sftp.copy_from_host(control.copy_from_vm("/root/sftp_key.pub", ""), "/home/backup/.ssh/authorized_keys")
    sftp.succeed("chown backup /home/backup/.ssh/authorized_keys")
    host_key = sftp.succeed("cat /etc/ssh/ssh_host_ed25519_key.pub").strip()

    # The database host: sample data, then enrolment with a token file.
    db.wait_for_unit("postgresql.service")
    db.succeed("sudo -u postgres psql -c \"create role app login password 'app-secret'\" -c 'create database shop owner app'")
    db.succeed("sudo -u postgres psql -d shop -c 'create table t as select g as id, md5(g::text) as s from generate_series(1, 5000) g' -c 'alter table t owner to app'")
    token = api.call("POST", f"/api/v1/orgs/{org}/enrolment-tokens", {"name": "db"})["token"]
    db.succeed(f"install -d -m 0700 /run/keys && echo -n {token} > /run/keys/enrolment-token")
    db.copy_from_host(control.copy_from_vm("/var/lib/dbcrate-control/tls/cert.pem", ""), "/run/keys/control-ca.pem")
    db.succeed("systemctl start dbcrate-agent")
    db.wait_for_unit("dbcrate-agent.service")
    agent_id = api.call("GET", f"/api/v1/orgs/{org}/agents")["items"][0]["id"]

    database = api.call("POST", f"/api/v1/orgs/{org}/databases", {
        "name": "shop", "host": "127.0.0.1", "port": 5432, "dbname": "shop", "username": "app",
        "password": "app-secret", "tls_mode": "disable", "agent_id": agent_id})["id"]
    destinations = {
        "s3": api.call("POST", f"/api/v1/orgs/{org}/destinations", {
            "name": "garage", "kind": "s3",
            "settings": {"endpoint": "http://s3:3900", "region": "garage", "bucket": "backups", "prefix": "pg" + major, "path_style": True},
            "credentials": {"access_key_id": key_id, "secret_access_key": key_secret}})["id"],
        "sftp": api.call("POST", f"/api/v1/orgs/{org}/destinations", {
            "name": "sftp", "kind": "sftp",
            "settings": {"host": "sftp", "port": 22, "username": "backup", "path": "/home/backup/dumps", "host_key": host_key},
            "credentials": {"private_key": control.succeed("cat /root/sftp_key")}})["id"],
    }

    # The recovery key, as the owner keeps it offline; the canonical dump of the source.
    control.succeed(f"cat > /root/recovery.key <<'KEY'\n{api.call('POST', f'/api/v1/orgs/{org}/recovery-key', {})['identity']}\nKEY")
    canonical = "pg_dump --no-owner --no-privileges --data-only --inserts --rows-per-insert=1 -t t"
    source = db.succeed(f"sudo -u postgres {canonical} shop | grep '^INSERT' | sort | sha256sum")

    def fetch(dest, key):
        if dest == "s3":
            control.succeed(f"RCLONE_CONFIG_G_TYPE=s3 RCLONE_CONFIG_G_PROVIDER=Other RCLONE_CONFIG_G_ENDPOINT=http://s3:3900 "
                            f"RCLONE_CONFIG_G_ACCESS_KEY_ID={key_id} RCLONE_CONFIG_G_SECRET_ACCESS_KEY={key_secret} "
                            f"RCLONE_CONFIG_G_REGION=garage rclone copyto g:backups/{key} /root/backup.age")
        else:
            control.succeed(f"sftp -i /root/sftp_key -o StrictHostKeyChecking=accept-new backup@sftp:/home/backup/dumps/{key} /root/backup.age")

    for dest, dest_id in destinations.items():
        t0 = time.monotonic()
        try:
            schedule = api.call("POST", f"/api/v1/orgs/{org}/schedules", {
                "database_id": database, "destination_id": dest_id, "cron": "0 3 * * *", "keep_daily": 7})["id"]
            api.call("POST", f"/api/v1/orgs/{org}/schedules/{schedule}/run", {})
            backup = None
            for _ in range(120):
                items = [b for b in api.call("GET", f"/api/v1/orgs/{org}/backups")["items"] if b.get("destination_id") == dest_id]
                if items:
                    backup = items[0]
                    break
                time.sleep(2)
            assert backup, f"no backup on {dest}"
            fetch(dest, backup["object_key"])
            # Stock tools only: age, zstd, pg_restore of the same major.
            db.copy_from_host(control.copy_from_vm("/root/backup.age", ""), "/root/backup.age")
            db.copy_from_host(control.copy_from_vm("/root/recovery.key", ""), "/root/recovery.key")
            db.succeed(f"sudo -u postgres createdb restored_{dest}")
            db.succeed(f"${pkgs.age}/bin/age -d -i /root/recovery.key /root/backup.age | ${pkgs.zstd}/bin/zstd -d | sudo -u postgres pg_restore --no-owner -d restored_{dest}")
            assert db.succeed(f"sudo -u postgres {canonical} restored_{dest} | grep '^INSERT' | sort | sha256sum") == source
            # A managed restore through the agent into a fresh database, compared too.
            db.succeed(f"sudo -u postgres createdb -O app managed_{dest}")
            target = api.call("POST", f"/api/v1/orgs/{org}/databases", {
                "name": f"managed_{dest}", "host": "127.0.0.1", "port": 5432, "dbname": f"managed_{dest}", "username": "app",
                "password": "app-secret", "tls_mode": "disable", "agent_id": agent_id})["id"]
            api.call("POST", f"/api/v1/orgs/{org}/restores", {"backup_id": backup["id"], "target_database_id": target})
            db.wait_until_succeeds(f"sudo -u postgres psql -At -d managed_{dest} -c 'select count(*) from t' | grep -x 5000", timeout=300)
            assert db.succeed(f"sudo -u postgres {canonical} managed_{dest} | grep '^INSERT' | sort | sha256sum") == source
            results.append((dest, "pass", time.monotonic() - t0))
        except Exception as e:
            results.append((dest, f"FAIL: {e}", time.monotonic() - t0))

    import os
    with open(os.path.join(os.environ.get("out", "."), "results.tsv"), "w") as f:
        for dest, outcome, secs in results:
            f.write(f"{major}\t{dest}\t{outcome}\t{secs:.0f}\n")
    for dest, outcome, secs in results:
        print(f"pg{major} {dest}: {outcome} ({secs:.0f} s)")
    assert all(outcome == "pass" for _, outcome, _ in results), results
  '';
}
