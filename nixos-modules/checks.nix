# What the modules promise, checked by evaluation alone (checks.<system>.module-assertions):
# evaluating this derivation fails, naming the promise, if one does not hold.
{ nixpkgs, nixosModules, system }:
let
  inherit (nixpkgs) lib;
  pkgs = nixpkgs.legacyPackages.${system};

  eval = modules: (lib.nixosSystem {
    inherit system;
    modules = [{ system.stateVersion = "24.11"; boot.isContainer = true; }] ++ modules;
  }).config;

  agentAt = tokenFile: eval [
    nixosModules.agent
    {
      services.dbcrate-agent = {
        enable = true;
        controlUrl = "https://control.example.com:8444";
        caFile = "/etc/dbcrate/ca.pem";
        enrolmentTokenFile = tokenFile;
        directoryRoots = [ "/srv/dbcrate" ];
      };
    }
  ];
  controlAt = keyFile: eval [
    nixosModules.control
    { services.dbcrate-control = { enable = true; masterKeyFile = keyFile; }; }
  ];

  failing = config: lib.filter (a: !a.assertion && lib.hasInfix "dbcrate" a.message) config.assertions;

  agent = agentAt "/run/keys/dbcrate-token";
  run = agent.systemd.services.dbcrate-agent;
  enrol = agent.systemd.services.dbcrate-agent-enroll;
  s = run.serviceConfig;
  control = controlAt "/run/secrets/dbcrate-master-key";
  c = control.systemd.services.dbcrate-control;

  promises = {
    "the agent runs as _dbcrate" = s.User == "_dbcrate" && enrol.serviceConfig.User == "_dbcrate";
    "_dbcrate is a system user without a login shell" =
      agent.users.users._dbcrate.isSystemUser && lib.hasSuffix "/nologin" agent.users.users._dbcrate.shell;
    "the data directory is a 0700 StateDirectory" = s.StateDirectory == "dbcrate" && s.StateDirectoryMode == "0700";
    "UMask 0077" = s.UMask == "0077";
    "no capabilities" = s.CapabilityBoundingSet == "" && s.AmbientCapabilities == "";
    "no new privileges" = s.NoNewPrivileges;
    "strict system protection" = s.ProtectSystem == "strict" && s.ProtectHome;
    "private tmp and devices" = s.PrivateTmp && s.PrivateDevices;
    "kernel and control-group protection" = s.ProtectKernelTunables && s.ProtectKernelModules
      && s.ProtectKernelLogs && s.ProtectControlGroups;
    "address families AF_INET/AF_INET6/AF_UNIX only" = s.RestrictAddressFamilies == [ "AF_INET" "AF_INET6" "AF_UNIX" ];
    "restricted namespaces" = s.RestrictNamespaces;
    "memory-deny-write-execute" = s.MemoryDenyWriteExecute;
    "@system-service minus privileged calls" = lib.elem "@system-service" s.SystemCallFilter
      && lib.elem "~@privileged" s.SystemCallFilter;
    "directory roots are writable and passed to run" = s.ReadWritePaths == [ "/srv/dbcrate" ]
      && lib.hasInfix "--directory-root /srv/dbcrate" s.ExecStart;
    "pg tools from the store, no registry" = lib.hasInfix "--no-registry" s.ExecStart
      && lib.all (p: lib.hasPrefix builtins.storeDir (toString p)) run.path && run.path != [ ];
    "revoked or misconfigured: not restarted" = s.RestartPreventExitStatus == [ 2 3 ];
    "the token is a credential, read from %d" = enrol.serviceConfig.LoadCredential == [ "enrolment-token:/run/keys/dbcrate-token" ]
      && lib.hasInfix "%d/enrolment-token" enrol.serviceConfig.ExecStart
      && !(lib.hasInfix "/run/keys/dbcrate-token" enrol.serviceConfig.ExecStart);
    "enrolment runs once" = enrol.unitConfig.ConditionPathExists == "!/var/lib/dbcrate/identity";
    "a token file in the store is refused" = failing (agentAt "${builtins.storeDir}/0000-token") != [ ]
      && failing agent == [ ];
    "the master key is a credential, not in the environment" =
      lib.elem "master-key:/run/secrets/dbcrate-master-key" c.serviceConfig.LoadCredential
      && !(c.environment ? DBCRATE_MASTER_KEY) && !(c.environment ? DBCRATE_MASTER_KEY_FILE);
    "a master key in the store is refused" = failing (controlAt "${builtins.storeDir}/0000-key") != [ ]
      && failing control == [ ];
    "the control plane checks before it serves" = lib.length c.serviceConfig.ExecStartPre == 2
      && c.serviceConfig.User == "_dbcrate-control";
  };
  broken = lib.attrNames (lib.filterAttrs (_: ok: !ok) promises);
in
assert lib.assertMsg (broken == [ ]) "module promises broken: ${lib.concatStringsSep "; " broken}";
pkgs.writeText "dbcrate-module-promises" (lib.concatMapStrings (p: "ok: ${p}\n") (lib.attrNames promises))
