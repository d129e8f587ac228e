# services.dbcrate-control: the control plane (docs/control-plane.md). The master key
# comes from a file delivered as a systemd credential (LoadCredential=), so it works with
# SOPS- or age-encrypted secret tools and never enters the Nix store.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.dbcrate-control;
  inherit (lib) mkOption types;
  absolutePath = types.strMatching "/.+";
  inStore = p: p != null && lib.hasPrefix builtins.storeDir p;
  listenAddress = types.strMatching "([[][0-9a-fA-F:.]+[]]|[0-9.]+):[0-9]+";

  environment = {
    DBCRATE_DATA_DIR = cfg.dataDir;
    DBCRATE_LISTEN = cfg.listen;
    DBCRATE_AGENT_LISTEN = cfg.agentListen;
  }
  // lib.optionalAttrs (cfg.tlsHostnames != [ ]) { DBCRATE_TLS_HOSTNAMES = lib.concatStringsSep "," cfg.tlsHostnames; }
  // lib.optionalAttrs (cfg.outboundAllow != [ ]) { DBCRATE_OUTBOUND_ALLOW = lib.concatStringsSep "," cfg.outboundAllow; }
  // lib.optionalAttrs (cfg.directoryRoots != [ ]) { DBCRATE_DIRECTORY_ROOTS = lib.concatStringsSep "," cfg.directoryRoots; }
  // lib.optionalAttrs (cfg.databaseUrl != null) { DATABASE_URL = cfg.databaseUrl; }
  // cfg.environment;

  credentials = [ "master-key:${cfg.masterKeyFile}" ]
    ++ lib.optional (cfg.tls != null) "tls-key:${cfg.tls.keyFile}"
    ++ lib.optional (cfg.databasePasswordFile != null) "database-password:${cfg.databasePasswordFile}";

  # Secrets are read from the credentials directory at start, never from the store.
  start = command: pkgs.writeShellScript "dbcrate-control-${command}" ''
    export DBCRATE_MASTER_KEY_FILE="$CREDENTIALS_DIRECTORY/master-key"
    ${lib.optionalString (cfg.tls != null) ''
      export DBCRATE_TLS_CERT_FILE=${lib.escapeShellArg cfg.tls.certFile}
      export DBCRATE_TLS_KEY_FILE="$CREDENTIALS_DIRECTORY/tls-key"
    ''}
    ${lib.optionalString (cfg.databasePasswordFile != null) ''
      PGPASSWORD=$(cat "$CREDENTIALS_DIRECTORY/database-password")
      export PGPASSWORD
    ''}
    exec ${lib.getExe cfg.package} ${command}
  '';
in
{
  options.services.dbcrate-control = {
    enable = lib.mkEnableOption "the dbcrate control plane";

    package = lib.mkPackageOption pkgs "dbcrate-control" { };

    masterKeyFile = mkOption {
      type = absolutePath;
      example = "/run/secrets/dbcrate-master-key";
      description = ''
        File with the master key(s) (`ID:BASE64` entries, see docs/master-key.md), e.g.
        decrypted by sops-nix or agenix. Handed to the service with `LoadCredential=` as
        `DBCRATE_MASTER_KEY_FILE`; never copied into the Nix store.
      '';
    };

    dataDir = mkOption {
      type = types.strMatching "/var/lib/[A-Za-z0-9_.-]+";
      default = "/var/lib/dbcrate-control";
      description = "SQLite database and generated TLS material (`DBCRATE_DATA_DIR`, a StateDirectory, 0700).";
    };

    listen = mkOption {
      type = listenAddress;
      default = "127.0.0.1:8443";
      example = "0.0.0.0:8443";
      description = "The HTTPS API (`DBCRATE_LISTEN`).";
    };

    agentListen = mkOption {
      type = listenAddress;
      default = "127.0.0.1:8444";
      example = "0.0.0.0:8444";
      description = "The agent listener, mutual TLS (`DBCRATE_AGENT_LISTEN`).";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the ports of `listen` and `agentListen`.";
    };

    tls = mkOption {
      default = null;
      description = "Certificate and key files; null: a self-signed pair generated in `dataDir` on first start.";
      type = types.nullOr (types.submodule {
        options = {
          certFile = mkOption { type = absolutePath; description = "PEM certificate chain."; };
          keyFile = mkOption { type = absolutePath; description = "PEM private key (a credential, never in the store)."; };
        };
      });
    };

    tlsHostnames = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "control.example.com" ];
      description = "Extra names for the generated certificate (`DBCRATE_TLS_HOSTNAMES`).";
    };

    databaseUrl = mkOption {
      type = types.nullOr (types.strMatching "postgres(ql)?://[^:@/]+(@.*)?");
      default = null;
      example = "postgres://dbcrate@db.internal/dbcrate?sslmode=require";
      description = "PostgreSQL instead of the embedded SQLite (`DATABASE_URL`), without a password: give `databasePasswordFile`.";
    };

    databasePasswordFile = mkOption {
      type = types.nullOr absolutePath;
      default = null;
      description = "The PostgreSQL password, a credential exported as `PGPASSWORD` at start.";
    };

    outboundAllow = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "10.20.0.0/16" ];
      description = "Private networks destinations may reach (`DBCRATE_OUTBOUND_ALLOW`); public addresses only by default.";
    };

    directoryRoots = mkOption {
      type = types.listOf absolutePath;
      default = [ ];
      description = "Directories under which directory destinations may live (`DBCRATE_DIRECTORY_ROOTS`); none by default.";
    };

    environment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = { DBCRATE_REGISTRY_URL = "https://registry.example.com"; };
      description = "Further settings (docs/control-plane.md); no secrets: they land in the store.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = map
      (p: {
        assertion = !(inStore p);
        message = "services.dbcrate-control: ${p} is in the Nix store, which every local user can read: keep secrets outside it.";
      })
      ([ cfg.masterKeyFile ] ++ lib.optional (cfg.tls != null) cfg.tls.keyFile
        ++ lib.optional (cfg.databasePasswordFile != null) cfg.databasePasswordFile)
    ++ [{
      assertion = cfg.databasePasswordFile == null || cfg.databaseUrl != null;
      message = "services.dbcrate-control.databasePasswordFile needs databaseUrl.";
    }];

    users.users._dbcrate-control = {
      isSystemUser = true;
      group = "_dbcrate-control";
      home = cfg.dataDir;
      shell = "${pkgs.shadow}/bin/nologin";
    };
    users.groups._dbcrate-control = { };

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall
      (map (a: lib.toInt (lib.last (lib.splitString ":" a))) [ cfg.listen cfg.agentListen ]);

    systemd.services.dbcrate-control = {
      description = "dbcrate control plane";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ] ++ lib.optional (cfg.databaseUrl != null) "postgresql.service";
      wants = [ "network-online.target" ];
      inherit environment;
      serviceConfig = {
        User = "_dbcrate-control";
        Group = "_dbcrate-control";
        UMask = "0077";
        StateDirectory = lib.removePrefix "/var/lib/" cfg.dataDir;
        StateDirectoryMode = "0700";
        WorkingDirectory = cfg.dataDir;
        LoadCredential = credentials;
        # Schema first, then the boot checks (master key, schema, TLS), then serve.
        ExecStartPre = [ (start "migrate") (start "check") ];
        ExecStart = start "serve";
        Restart = "on-failure";
        RestartSec = "5s";
      } // import ./sandbox.nix { writable = cfg.directoryRoots; };
    };
  };
}
