{
  description = "dbcrate: encrypted PostgreSQL backups into storage you own, as a Nix-built appliance";

  inputs = {
    # Packages, NixOS modules and VM tests.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    # Only for PostgreSQL 13, which left nixpkgs on 2025-11-17 (end of upstream support);
    # 25.05 is the newest release that still has postgresql_13.
    nixpkgs-pg13.url = "github:NixOS/nixpkgs/nixos-25.05";
    crane.url = "github:ipetkov/crane/v0.23.4";
  };

  outputs = { self, nixpkgs, nixpkgs-pg13, crane }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems f;
      pgMajors = [ "13" "14" "15" "16" "17" "18" ];
      cargoToml = lib.importTOML ./Cargo.toml;

      # PostgreSQL of each major for a system: from the main nixpkgs, else (13) from the
      # older release. A major neither has is left out and listed in
      # lib.postgresqlMajorsMissing, which scripts/nix-check prints.
      postgresqlFor = system:
        let
          main = nixpkgs.legacyPackages.${system};
          old = nixpkgs-pg13.legacyPackages.${system};
          pick = m: main."postgresql_${m}" or old."postgresql_${m}" or null;
        in
        lib.filterAttrs (_: p: p != null) (lib.genAttrs pgMajors pick);

      # The Rust toolchain: rust-toolchain.toml's version from the official release
      # artifacts, pinned by hash (nix/rust-toolchain.nix; nixpkgs' rustc is too old for
      # the workspace's rust-version, docs/nix.md). A function of the package set, so crane
      # can splice it; `targets` adds rust-std of further targets.
      rustToolchainVersion = (lib.importTOML ./rust-toolchain.toml).toolchain.channel;
      toolchainFor = targets: p:
        let toolchain = p.callPackage ./nix/rust-toolchain.nix { inherit targets; };
        in
        assert lib.assertMsg (toolchain.version == rustToolchainVersion)
          "nix/rust-toolchain-sources.nix has Rust ${toolchain.version}, rust-toolchain.toml ${rustToolchainVersion}: run nix/update-rust-toolchain";
        toolchain;

      # Everything the flake builds, from one package set (also the overlay's body).
      mkDbcrate = pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
          rustToolchain = toolchainFor [ ] pkgs;
          craneLib = (crane.mkLib pkgs).overrideToolchain (toolchainFor [ ]);
          src = lib.fileset.toSource {
            root = ./.;
            fileset = lib.fileset.unions [
              ./Cargo.toml
              ./Cargo.lock
              ./core
              ./storage
              ./agent
              ./control
              ./registry
              ./signer
              ./testkit
              ./demo
              ./third_party
            ];
          };
          common = {
            inherit src;
            pname = "dbcrate";
            inherit (cargoToml.workspace.package) version;
            strictDeps = true;
            # The tests start real PostgreSQL, Garage and sshd servers: scripts/test runs them.
            doCheck = false;
          };
          cargoArtifacts = craneLib.buildDepsOnly common;
          binary = name: description: craneLib.buildPackage (common // {
            inherit cargoArtifacts;
            pname = name;
            cargoExtraArgs = "--locked --package ${name}";
            meta = {
              inherit description;
              mainProgram = name;
              license = lib.licenses.asl20;
              platforms = systems;
            };
          });

          # nixpkgs' static C toolchain (musl; the C dependencies zstd, SQLite and ring's
          # assembly linked statically too) as the linker, and the pinned Rust toolchain
          # with rust-std for the musl target.
          staticTarget = pkgs.pkgsStatic.stdenv.hostPlatform.rust.rustcTarget;
          craneStatic = (crane.mkLib pkgs.pkgsStatic).overrideToolchain (toolchainFor [ staticTarget ]);
          staticCommon = common // {
            CARGO_BUILD_TARGET = staticTarget;
            CARGO_BUILD_RUSTFLAGS = "-C target-feature=+crt-static";
          };

          postgresql = postgresqlFor system;
          arch = pkgs.stdenv.hostPlatform.uname.processor;

          packages = rec {
            dbcrate-agent = binary "dbcrate-agent" "dbcrate's database-host agent (outbound mTLS only)";
            dbcrate-control = binary "dbcrate-control" "dbcrate's control plane";
            dbcrate-registry = binary "dbcrate-registry" "Builds and serves dbcrate's pg_dump registry";
            dbcrate-signer = binary "dbcrate-signer" "Keys and signatures of dbcrate's pg_dump registry";

            dbcrate-agent-static = craneStatic.buildPackage (staticCommon // {
              cargoArtifacts = craneStatic.buildDepsOnly staticCommon;
              pname = "dbcrate-agent-static";
              cargoExtraArgs = "--locked --package dbcrate-agent";
              meta = dbcrate-agent.meta // { description = "dbcrate-agent, static (musl)"; };
            });

            # The pg_dump registry, unsigned: one artifact per major for this system's
            # architecture, from nixpkgs' PostgreSQL clients. Sign it outside the store with
            # `nix run .#sign-registry -- --keys DIR`.
            dbcrate-pg-registry = pkgs.runCommand "dbcrate-pg-registry-${arch}"
              {
                nativeBuildInputs = [ dbcrate-registry ];
                passthru = { inherit postgresql; };
              }
              ''
                ${lib.concatStrings (lib.mapAttrsToList (major: pg: ''
                  mkdir -p input/${major}-${arch}/bin
                  ln -s ${lib.getBin pg}/bin/{pg_dump,pg_dumpall,pg_restore,psql} input/${major}-${arch}/bin/
                '') postgresql)}
                dbcrate-registry build --input input --out "$out" --manifest-version 1
              '';

            default = pkgs.symlinkJoin {
              name = "dbcrate-${common.version}";
              paths = [ dbcrate-agent dbcrate-control dbcrate-registry dbcrate-signer ];
            };
          };
        in
        packages // {
          inherit craneLib common cargoArtifacts postgresql rustToolchain;
        };

      built = forAllSystems (system: mkDbcrate nixpkgs.legacyPackages.${system});

      # Each module gets the flake's packages (and PostgreSQL clients) as defaults, so a
      # NixOS configuration needs neither the overlay nor the package options.
      withDefaults = file: config: { pkgs, ... }: {
        imports = [ file ];
        config = config built.${pkgs.stdenv.hostPlatform.system};
      };
    in
    {
      packages = forAllSystems (system: lib.getAttrs [
        "dbcrate-agent"
        "dbcrate-control"
        "dbcrate-registry"
        "dbcrate-signer"
        "dbcrate-agent-static"
        "dbcrate-pg-registry"
        "default"
      ]
        built.${system});

      overlays.default = final: _prev: lib.getAttrs [
        "dbcrate-agent"
        "dbcrate-control"
        "dbcrate-registry"
        "dbcrate-signer"
        "dbcrate-agent-static"
        "dbcrate-pg-registry"
      ]
        (mkDbcrate final);

      nixosModules = {
        agent = withDefaults ./nixos-modules/agent.nix (b: {
          services.dbcrate-agent = {
            package = lib.mkDefault b.dbcrate-agent;
            postgresqlPackages = lib.mkDefault (lib.attrValues b.postgresql);
          };
        });
        control = withDefaults ./nixos-modules/control.nix (b: {
          services.dbcrate-control.package = lib.mkDefault b.dbcrate-control;
        });
        registry = withDefaults ./nixos-modules/registry.nix (b: {
          services.dbcrate-registry.package = lib.mkDefault b.dbcrate-registry;
        });
      };

      checks = forAllSystems (system:
        let
          b = built.${system};
          pkgs = nixpkgs.legacyPackages.${system};
          vmTests = import ./vm-tests {
            inherit pkgs;
            inherit (self) nixosModules;
            inherit (b) postgresql;
          };
        in
        {
          inherit (b) dbcrate-agent dbcrate-control dbcrate-registry dbcrate-signer;
          clippy = b.craneLib.cargoClippy (b.common // {
            inherit (b) cargoArtifacts;
            cargoClippyExtraArgs = "--workspace --all-targets --locked -- -D warnings";
          });
          fmt = b.craneLib.cargoFmt { inherit (b.common) src pname version; };
          module-assertions = import ./nixos-modules/checks.nix {
            inherit nixpkgs system;
            inherit (self) nixosModules;
          };
        } // vmTests);

      apps = forAllSystems (system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          checks = self.checks.${system};
          gates = lib.filterAttrs (name: _: lib.hasPrefix "release-gate-pg" name) checks;
          app = drv: description: {
            type = "app";
            program = lib.getExe drv;
            meta = { inherit description; };
          };
        in
        {
          release-gate = app
            (pkgs.writeShellApplication {
              name = "dbcrate-release-gate";
              runtimeInputs = [ pkgs.coreutils pkgs.gnused ];
              text = import ./vm-tests/release-gate-app.nix {
                inherit lib pgMajors;
                # Built by flake reference (the source is in the store with the app), so
                # running the app evaluates them where it runs.
                gates = lib.mapAttrs (name: _: "${self}#checks.${system}.${name}") gates;
              };
            })
            "Run the VM release gate for every PostgreSQL major (or the ones named) and print major x destination";
          sign-registry = app
            (pkgs.writeShellApplication {
              name = "dbcrate-sign-registry";
              runtimeInputs = [ pkgs.coreutils self.packages.${system}.dbcrate-signer ];
              text = ''
                usage() { echo "usage: sign-registry --keys DIR [--out DIR] [--expires-days N] [sign-manifest flags…]" >&2; exit 2; }
                keys="" out="dbcrate-registry" days=30
                args=()
                while [ $# -gt 0 ]; do
                  case $1 in
                    --keys) keys=''${2:-}; shift 2 || usage ;;
                    --out) out=''${2:-}; shift 2 || usage ;;
                    --expires-days) days=''${2:-}; shift 2 || usage ;;
                    *) args+=("$1"); shift ;;
                  esac
                done
                [ -n "$keys" ] || usage
                # The store tree is read-only and public: copy it out, sign the copy.
                mkdir -p "$out"
                cp -r --no-preserve=mode,ownership ${self.packages.${system}.dbcrate-pg-registry}/. "$out"/
                # The tree was built at SOURCE_DATE_EPOCH (1980), so its expiry has passed:
                # the expiry is set here, when the operator signs.
                dbcrate-signer sign-manifest --registry "$out" --keys "$keys" \
                  --expires-days "$days" "''${args[@]}"
                echo "signed registry tree: $out"
              '';
            })
            "Copy the flake's unsigned pg_dump registry out of the store and sign it with keys kept outside it";
        });

      devShells = forAllSystems (system:
        let pkgs = nixpkgs.legacyPackages.${system};
        in {
          default = pkgs.mkShell {
            inputsFrom = [ built.${system}.dbcrate-agent ];
            packages = with pkgs; [
              # The pinned toolchain (cargo, rustc, clippy, rustfmt), as the builds use it.
              built.${system}.rustToolchain
              age
              minisign
              zstd
              openssh
              (pkgs.garage_2 or pkgs.garage)
              nixpkgs-fmt
              deadnix
            ] ++ map lib.getBin (lib.attrValues built.${system}.postgresql);
          };
        });

      lib = {
        postgresqlMajors = forAllSystems (system: lib.attrNames (postgresqlFor system));
        postgresqlMajorsMissing = forAllSystems (system:
          lib.subtractLists (lib.attrNames (postgresqlFor system)) pgMajors);
      };

      formatter = forAllSystems (system: nixpkgs.legacyPackages.${system}.nixpkgs-fmt);
    };
}
