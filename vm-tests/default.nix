# The NixOS VM tests: the release gate for every PostgreSQL major the pinned nixpkgs has,
# and the agent's hardening. They need a Nix machine with a binary cache and KVM; on the
# offline CI machines scripts/nix-check instantiates their drivers only.
{ pkgs, nixosModules, postgresql }:
let
  inherit (pkgs) lib;
  # nixpkgs' Garage: the 2.x series where the pinned release has it.
  garage = pkgs.garage_2 or pkgs.garage;
in
lib.mapAttrs'
  (major: pg: lib.nameValuePair "release-gate-pg${major}"
    (import ./release-gate.nix { inherit pkgs nixosModules major garage; postgresql = pg; }))
  postgresql
  // {
  agent-hardening = import ./agent-hardening.nix {
    inherit pkgs nixosModules;
    postgresql = postgresql."17" or (lib.last (lib.attrValues postgresql));
  };
}
