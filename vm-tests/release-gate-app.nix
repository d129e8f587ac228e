# The body of `nix run .#release-gate [MAJOR…]`: builds the release-gate VM test of each
# major (all, or the ones named) and prints major × destination → pass/fail with times.
{ lib, pgMajors, gates }:
''
  declare -A drv=(
  ${lib.concatStrings (lib.mapAttrsToList (name: ref: "  [${lib.removePrefix "release-gate-pg" name}]=${lib.escapeShellArg ref}\n") gates)})
  majors=("$@")
  [ ''${#majors[@]} -gt 0 ] || majors=(${lib.concatStringsSep " " pgMajors})
  rows=()
  failed=0
  for m in "''${majors[@]}"; do
    if [ -z "''${drv[$m]:-}" ]; then
      rows+=("$m	-	NOT IN THIS NIXPKGS (no postgresql_$m)	-")
      failed=1
      continue
    fi
    t0=$SECONDS
    echo "==> PostgreSQL $m: nix build -L ''${drv[$m]}" >&2
    if out=$(nix build -L --no-link --print-out-paths "''${drv[$m]}"); then
      while IFS=$'\t' read -r major dest outcome secs; do
        rows+=("$major	$dest	$outcome	''${secs}s")
      done <"$out/results.tsv"
    else
      rows+=("$m	s3+sftp	FAIL (see the log above)	$((SECONDS - t0))s")
      failed=1
    fi
  done
  printf '\n%-6s %-6s %-40s %s\n' major dest result time
  for r in "''${rows[@]}"; do
    IFS=$'\t' read -r a b c d <<<"$r"
    printf '%-6s %-6s %-40s %s\n' "$a" "$b" "$c" "$d"
  done
  exit "$failed"
''
