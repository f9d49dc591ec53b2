# Shared by slurm-up.sh and slurm-down.sh (sourced; needs PIDS, the folder of the daemons' pid files).

# pid_of NAME: the pid in NAME's pid file, if that process is alive (not a zombie) and is NAME.
pid_of() {
  local p
  p=$(cat "$PIDS/$1.pid" 2>/dev/null) || return 1
  [ -n "$p" ] && [ -r "/proc/$p/stat" ] || return 1
  [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] || return 1
  [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ]
  echo "$p"
}
