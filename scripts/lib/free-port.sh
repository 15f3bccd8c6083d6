# Sourced by the load scripts (bench-server.sh, soak.sh).

# A loopback port nobody listens on (another process may still take it
# before the caller binds it: callers retry on "Address already in use").
free_port() {
  local p fd
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    if { exec {fd}<>"/dev/tcp/127.0.0.1/$p"; } 2>/dev/null; then
      exec {fd}>&-
    else
      echo "$p"
      return 0
    fi
  done
  return 1
}
