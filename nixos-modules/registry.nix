# services.dbcrate-registry: serve a signed pg_dump registry tree over HTTPS
# (`dbcrate-registry serve`). The tree is signed outside the store
# (`nix run .#sign-registry`) and placed in `dir`; the server only reads it.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.dbcrate-registry;
  inherit (lib) mkOption types;
  absolutePath = types.strMatching "/.+";
in
{
  options.services.dbcrate-registry = {
    enable = lib.mkEnableOption "serving a dbcrate pg_dump registry";
    package = lib.mkPackageOption pkgs "dbcrate-registry" { };
    dir = mkOption {
      type = absolutePath;
      example = "/srv/dbcrate-registry";
      description = "The signed registry tree (manifest, roots, artifacts).";
    };
    listen = mkOption {
      type = types.strMatching "([[][0-9a-fA-F:.]+[]]|[0-9.]+):[0-9]+";
      default = "127.0.0.1:8443";
      description = "Address to listen on.";
    };
    tlsCertFile = mkOption { type = absolutePath; description = "PEM certificate chain."; };
    tlsKeyFile = mkOption {
      type = absolutePath;
      description = "PEM private key, handed over with `LoadCredential=` (never in the store).";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [{
      assertion = !(lib.hasPrefix builtins.storeDir cfg.tlsKeyFile);
      message = "services.dbcrate-registry.tlsKeyFile is in the Nix store: keep the key outside it.";
    }];
    systemd.services.dbcrate-registry = {
      description = "dbcrate pg_dump registry";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      serviceConfig = {
        DynamicUser = true;
        LoadCredential = [ "tls-key:${cfg.tlsKeyFile}" ];
        ExecStart = lib.escapeShellArgs [
          (lib.getExe cfg.package)
          "serve"
          "--dir"
          cfg.dir
          "--listen"
          cfg.listen
          "--tls-cert"
          cfg.tlsCertFile
          "--tls-key"
          "%d/tls-key"
        ];
        UMask = "0077";
        # The registry only serves HTTPS: no Unix sockets.
      } // import ./sandbox.nix { families = [ "AF_INET" "AF_INET6" ]; };
    };
  };
}
