# services.dbcrate-agent: the database-host agent (docs/agent.md). It enrols once with a
# one-time token read from a file at first start, then runs `dbcrate-agent run` as the
# static system user _dbcrate, outbound only, with each PostgreSQL major's pg_dump and
# pg_restore taken from the Nix store (no registry download).
{ config, lib, pkgs, ... }:
let
  cfg = config.services.dbcrate-agent;
  inherit (lib) mkOption types;

  # An absolute path given as a string: a Nix path literal (./token) is refused by the
  # type, so a secret is never copied into the world-readable store by accident.
  absolutePath = types.strMatching "/.+";
  inStore = p: p != null && lib.hasPrefix builtins.storeDir p;

  runArgs = [ "--data-dir" cfg.dataDir ]
    ++ lib.optional (!cfg.useRegistry) "--no-registry"
    ++ lib.concatMap (root: [ "--directory-root" root ]) cfg.directoryRoots
    ++ cfg.extraArgs;

  enrolArgs = [ "--data-dir" cfg.dataDir "--control-url" cfg.controlUrl "--token-file" "%d/enrolment-token" ]
    ++ lib.optionals (cfg.caFile != null) [ "--ca-file" cfg.caFile ]
    ++ lib.optionals (cfg.serverFingerprint != null) [ "--server-fingerprint" cfg.serverFingerprint ]
    ++ lib.optionals (cfg.name != null) [ "--name" cfg.name ]
    ++ lib.optionals (cfg.organisation != null) [ "--org" cfg.organisation ];

  # The hardening both units share. Exported read-only as
  # services.dbcrate-agent.hardening so tests and nix-check can assert it.
  hardening = {
    User = "_dbcrate";
    Group = "_dbcrate";
    UMask = "0077";
    StateDirectory = lib.removePrefix "/var/lib/" cfg.dataDir;
    StateDirectoryMode = "0700";
    WorkingDirectory = cfg.dataDir;
  } // import ./sandbox.nix { writable = cfg.directoryRoots; };
in
{
  options.services.dbcrate-agent = {
    enable = lib.mkEnableOption "the dbcrate agent on this database host";

    package = lib.mkPackageOption pkgs "dbcrate-agent" { };

    controlUrl = mkOption {
      type = types.strMatching "https://.+";
      example = "https://control.example.com:8444";
      description = "The control plane's agent listener (mutual TLS; `DBCRATE_AGENT_LISTEN` there).";
    };

    caFile = mkOption {
      type = types.nullOr absolutePath;
      default = null;
      example = "/etc/dbcrate/control-ca.pem";
      description = "PEM certificate(s) pinning the control plane at enrolment. Give this or `serverFingerprint`.";
    };

    serverFingerprint = mkOption {
      type = types.nullOr (types.strMatching "([0-9A-F]{2}:){31}[0-9A-F]{2}");
      default = null;
      example = "AB:CD:…";
      description = "The control plane certificate's SHA-256 fingerprint, as `dbcrate-control serve` prints it, instead of `caFile`.";
    };

    enrolmentTokenFile = mkOption {
      type = absolutePath;
      example = "/run/secrets/dbcrate-enrolment-token";
      description = ''
        File holding the one-time enrolment token (`dbce_…`), read once by
        `dbcrate-agent-enroll.service` at first start through a systemd credential
        (`LoadCredential=`), never copied into the Nix store. Once enrolled (the identity
        exists under `dataDir`) the file is not read again and may be deleted.
      '';
    };

    name = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "This agent's name in the control plane (default: the host name).";
    };

    organisation = mkOption {
      type = types.nullOr (types.strMatching "org_.+");
      default = null;
      description = "Refuse an enrolment token of any other organisation (`--org`).";
    };

    dataDir = mkOption {
      type = types.strMatching "/var/lib/[A-Za-z0-9_.-]+";
      default = "/var/lib/dbcrate";
      description = ''
        The agent's data directory (identity under `identity/`, 0700/0600). A
        `StateDirectory` owned by `_dbcrate`, mode 0700, as the agent requires.
      '';
    };

    directoryRoots = mkOption {
      type = types.listOf absolutePath;
      default = [ ];
      example = [ "/srv/dbcrate" ];
      description = ''
        Directories under which jobs may read and write directory destinations
        (`run --directory-root`); each must exist and is made writable for the service
        (`ReadWritePaths`). Empty: directory destinations are refused on this host.
      '';
    };

    postgresqlPackages = mkOption {
      type = types.listOf types.package;
      defaultText = lib.literalMD "nixpkgs' PostgreSQL 13–18 (the flake's module: its pinned clients)";
      default = map (m: pkgs."postgresql_${m}") (lib.filter (m: pkgs ? "postgresql_${m}") [ "13" "14" "15" "16" "17" "18" ]);
      description = ''
        PostgreSQL packages whose `pg_dump`/`pg_restore` the agent may run. Their `bin`
        directories are the service's `PATH`; for each job the agent runs the tools whose
        major equals the server's (else the oldest newer one).
      '';
    };

    useRegistry = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Fetch pg_dump/pg_restore from the signed registry the control plane names instead of
        `postgresqlPackages` (downloads into `dataDir`). Off on NixOS: the store has them.
      '';
    };

    logLevel = mkOption {
      type = types.enum [ "error" "warn" "info" "debug" ];
      default = "info";
      description = "`DBCRATE_LOG`.";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--registry-ca" "/etc/dbcrate/registry-ca.pem" ];
      description = "Extra arguments to `dbcrate-agent run`.";
    };

    environment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      description = "Extra environment of both units (no secrets: it lands in the store).";
    };

    hardening = mkOption {
      type = types.attrsOf types.anything;
      readOnly = true;
      default = hardening;
      description = "The systemd hardening both units use (read-only; for tests).";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = (cfg.caFile == null) != (cfg.serverFingerprint == null);
        message = "services.dbcrate-agent: set exactly one of caFile and serverFingerprint.";
      }
      {
        assertion = !(inStore cfg.enrolmentTokenFile);
        message = "services.dbcrate-agent.enrolmentTokenFile is in the Nix store (${cfg.enrolmentTokenFile}), which every local user can read: keep the token outside it.";
      }
      {
        assertion = cfg.postgresqlPackages != [ ] || cfg.useRegistry;
        message = "services.dbcrate-agent: postgresqlPackages is empty and useRegistry is off: jobs would have no pg_dump.";
      }
    ];

    users.users._dbcrate = {
      isSystemUser = true;
      group = "_dbcrate";
      home = cfg.dataDir;
      shell = "${pkgs.shadow}/bin/nologin";
      description = "dbcrate agent";
    };
    users.groups._dbcrate = { };

    systemd.services.dbcrate-agent-enroll = {
      description = "dbcrate agent: one-time enrolment";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      before = [ "dbcrate-agent.service" ];
      unitConfig.ConditionPathExists = "!${cfg.dataDir}/identity";
      environment = cfg.environment // { DBCRATE_LOG = cfg.logLevel; };
      serviceConfig = hardening // {
        Type = "oneshot";
        RemainAfterExit = true;
        LoadCredential = [ "enrolment-token:${cfg.enrolmentTokenFile}" ];
        ExecStart = lib.escapeShellArgs ([ (lib.getExe cfg.package) "enroll" ] ++ enrolArgs);
      };
    };

    systemd.services.dbcrate-agent = {
      description = "dbcrate agent";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" "dbcrate-agent-enroll.service" ];
      wants = [ "network-online.target" ];
      requires = [ "dbcrate-agent-enroll.service" ];
      path = map lib.getBin cfg.postgresqlPackages;
      environment = cfg.environment // { DBCRATE_LOG = cfg.logLevel; };
      serviceConfig = hardening // {
        ExecStart = lib.escapeShellArgs ([ (lib.getExe cfg.package) "run" ] ++ runArgs);
        Restart = "on-failure";
        RestartSec = "10s";
        # 2: bad configuration, 3: identity problem (revoked, expired, unsafe modes):
        # a person must act, restarting would not help.
        RestartPreventExitStatus = [ 2 3 ];
      };
    };
  };
}
