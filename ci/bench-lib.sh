# Shared by the ci/bench* scripts (sourced): a ~200 MB corpus of small files, timed runs with
# medians and peak RSS, ratios, and throwaway loopback registries. Expects $W and $RUNS.

make_corpus() {
CORPUS=$W/corpus
mkdir -p "$CORPUS"
python3 - "$CORPUS" <<'PY'
import os, shutil, sys, glob
dst = sys.argv[1]; total = 0; limit = 200 * 1024 * 1024
roots = [os.path.expanduser("~/.cargo/registry/src")] + glob.glob("/usr/lib/python3*") + ["/usr/share/doc"]
for root in roots:
    for d, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            p = os.path.join(d, f)
            if not os.path.isfile(p) or os.path.islink(p) or not f.endswith((".rs", ".py", ".md", ".txt", ".toml", ".html", ".c", ".h", "copyright")):
                continue
            rel = os.path.relpath(p, "/").replace(os.sep, "_")[:200]
            sub = os.path.join(dst, rel[:2])
            os.makedirs(sub, exist_ok=True)
            shutil.copyfile(p, os.path.join(sub, rel))
            total += os.path.getsize(p)
            if total >= limit:
                print(f"corpus: {total/1e6:.0f} MB"); sys.exit(0)
print(f"corpus: {total/1e6:.0f} MB")
PY
echo "files: $(find "$CORPUS" -type f | wc -l)"
cat "$(find "$CORPUS" -type f | head -2000)" >/dev/null 2>&1 || true
tar -cf - -C "$CORPUS" . >/dev/null  # warm the page cache
}

# run NAME CMD...: RUNS timed runs; records median wall seconds and max RSS (MB).
declare -A T M
run() {
  local name=$1; shift
  local ts=() ms=()
  for _ in $(seq "$RUNS"); do
    [ -n "${SETUP:-}" ] && eval "$SETUP"
    /usr/bin/time -f "%e %M" -o "$W/t" "$@" >/dev/null 2>"$W/err" || { cat "$W/err"; exit 1; }
    read -r e m <"$W/t"; ts+=("$e"); ms+=("$m")
  done
  T[$name]=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  M[$name]=$(printf '%s\n' "${ms[@]}" | sort -n | tail -1)
  printf '%-34s %8ss  %6.1f MB   (runs: %s)\n' "$name" "${T[$name]}" "$(echo "${M[$name]}/1024" | bc -l)" "${ts[*]}"
}
ratio() { printf '  %-50s %.2fx\n' "$1" "$(echo "${T[$2]}/${T[$3]}" | bc -l)"; }

start_registry() {
  local dir=$W/reg-$1 port=$2
  rm -rf "$dir"; mkdir -p "$dir"
  printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s/data}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:%s}\n' "$dir" "$port" >"$dir/config.yml"
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && return; sleep 0.1; done
}
stop_registry() { [ -f "$W/reg-$1/pid" ] || return 0; kill "$(cat "$W/reg-$1/pid")" 2>/dev/null || true; wait "$(cat "$W/reg-$1/pid")" 2>/dev/null || true; rm -f "$W/reg-$1/pid"; }
