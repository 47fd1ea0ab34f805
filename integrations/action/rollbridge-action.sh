#!/usr/bin/env bash
# The rollbridge GitHub Action: action.yml runs this script with every input in an INPUT_* variable.
# It runs `rollbridge <command> --json` (with --stream where the command has progress) on this runner,
# or on a host over SSH after uploading the release (tar over ssh) and installing the binary when the
# host's copy differs. Phases stream into the log, the result becomes the step's outputs and a job
# summary, and rollbridge's {code, message, fix} errors become an annotation.
# Runner needs: bash, awk, tar, ssh, find and coreutils. Host needs: sh, tar, coreutils (mkdir, mv, cat,
# chmod, mktemp, sha256sum) and the binary; no Node and no network beyond the SSH connection.
set -euo pipefail
shopt -s lastpipe

readonly COMMANDS=(deploy rollback restart status legacy-takeover predeploy-cleanup recover)
readonly STREAMING_COMMANDS=(deploy rollback restart legacy-takeover)
readonly RELEASE_ID_PATTERN='^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$'

# ---------------------------------------------------------------------------------------------------
# Workflow commands and outputs

escape_data() {
  local value=$1
  value=${value//%/%25}
  value=${value//$'\r'/%0D}
  value=${value//$'\n'/%0A}
  printf '%s' "$value"
}

escape_property() {
  local value
  value=$(escape_data "$1")
  value=${value//:/%3A}
  value=${value//,/%2C}
  printf '%s' "$value"
}

# annotate LEVEL MESSAGE [TITLE]
annotate() {
  printf '::%s title=%s::%s\n' "$1" "$(escape_property "${3:-rollbridge}")" "$(escape_data "$2")"
}

# fail MESSAGE FIX: an input or setup problem, reported before rollbridge runs.
fail() {
  annotate error "$1"$'\n'"Fix: $2"
  summary_failure "$1" "$2" ""
  exit 1
}

random_token() {
  od -An -N12 -tx1 /dev/urandom | tr -d ' \n'
}

# set_output NAME VALUE (any value: a delimiter that does not occur in it)
set_output() {
  [[ -n ${GITHUB_OUTPUT:-} ]] || return 0
  local delimiter
  delimiter="ROLLBRIDGE_$(random_token)"
  while [[ $2 == *"$delimiter"* ]]; do delimiter+="_$(random_token)"; done
  printf '%s<<%s\n%s\n%s\n' "$1" "$delimiter" "$2" "$delimiter" >>"$GITHUB_OUTPUT"
}

summary() {
  [[ -n ${GITHUB_STEP_SUMMARY:-} ]] || return 0
  printf '%s\n' "$@" >>"$GITHUB_STEP_SUMMARY"
}

# A Markdown table cell: one line, pipes escaped.
cell() {
  local value=${1//$'\n'/ }
  value=${value//|/\\|}
  printf '%s' "$value"
}

format_ms() {
  local ms=$1
  [[ $ms =~ ^[0-9]+$ ]] || { printf '%s' "${ms:--}"; return; }
  if ((ms < 1000)); then printf '%d ms' "$ms"; else printf '%d.%02d s' $((ms / 1000)) $((ms % 1000 / 10)); fi
}

# ---------------------------------------------------------------------------------------------------
# JSON: rollbridge's output is flattened by awk into "path<TAB>value" lines (objects as a.b, arrays as
# a.0), strings decoded with backslash, newline, tab and CR written as \\ \n \t \r; null is empty.

# shellcheck disable=SC2016 # awk program, not shell
readonly JSON_FLATTEN_AWK='
function fail() { failed = 1; exit 2 }
function ws() { while (i <= n && index(" \t\r\n", substr(text, i, 1)) > 0) i++ }
function hexval(s,    k, v) { v = 0; for (k = 1; k <= 4; k++) v = v * 16 + index("0123456789abcdef", tolower(substr(s, k, 1))) - 1; return v }
function utf8(c) {
  if (c <= 0) return ""
  if (c < 128) return sprintf("%c", c)
  if (c < 2048) return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
  if (c < 65536) return sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64)
  return sprintf("%c%c%c%c", 240 + int(c / 262144), 128 + int(c / 4096) % 64, 128 + int(c / 64) % 64, 128 + c % 64)
}
function str(    out, c, e, code, low) {
  if (substr(text, i, 1) != "\"") fail()
  i++; out = ""
  while (i <= n) {
    c = substr(text, i, 1)
    if (c == "\"") { i++; return out }
    if (c != "\\") { out = out c; i++; continue }
    e = substr(text, i + 1, 1); i += 2
    if (e == "n") out = out "\n"; else if (e == "t") out = out "\t"; else if (e == "r") out = out "\r"
    else if (e == "b") out = out "\b"; else if (e == "f") out = out "\f"
    else if (e == "u") {
      code = hexval(substr(text, i, 4)); i += 4
      if (code >= 55296 && code < 56320 && substr(text, i, 2) == "\\u") {
        low = hexval(substr(text, i + 2, 4))
        if (low >= 56320 && low < 57344) { code = 65536 + (code - 55296) * 1024 + (low - 56320); i += 6 }
      }
      out = out utf8(code)
    } else out = out e
  }
  fail()
}
function emit(path, value,    k, c, out) {
  out = ""
  for (k = 1; k <= length(value); k++) {
    c = substr(value, k, 1)
    if (c == "\\") out = out "\\\\"; else if (c == "\n") out = out "\\n"; else if (c == "\t") out = out "\\t"; else if (c == "\r") out = out "\\r"; else out = out c
  }
  printf "%s\t%s\n", path, out
}
function join(path, key) { return path == "" ? key : path "." key }
function value(path,    c, key, k, lit) {
  ws(); c = substr(text, i, 1)
  if (c == "{") {
    i++; ws()
    if (substr(text, i, 1) == "}") { i++; return }
    while (1) {
      ws(); key = str(); ws()
      if (substr(text, i, 1) != ":") fail()
      i++; value(join(path, key)); ws()
      c = substr(text, i, 1); i++
      if (c == "}") return
      if (c != ",") fail()
    }
  }
  if (c == "[") {
    i++; ws()
    if (substr(text, i, 1) == "]") { i++; return }
    for (k = 0; ; k++) {
      value(join(path, k)); ws()
      c = substr(text, i, 1); i++
      if (c == "]") return
      if (c != ",") fail()
    }
  }
  if (c == "\"") { emit(path, str()); return }
  lit = ""
  while (i <= n && index("0123456789+-.eEtrufalsn", substr(text, i, 1)) > 0) { lit = lit substr(text, i, 1); i++ }
  if (lit == "" || (lit !~ /^-?[0-9]/ && lit != "true" && lit != "false" && lit != "null")) fail()
  emit(path, lit == "null" ? "" : lit)
}
{ text = text $0 "\n" }
END {
  if (failed) exit 2
  n = length(text); i = 1
  value(""); ws()
  if (i <= n) fail()
}'

# json_flatten TEXT: prints the flattened lines; fails when TEXT is not one JSON document.
json_flatten() {
  printf '%s\n' "$1" | LC_ALL=C awk "$JSON_FLATTEN_AWK"
}

# json_get FLAT PATH: the decoded value at PATH (empty when absent).
json_get() {
  local line
  while IFS= read -r line; do
    if [[ ${line%%$'\t'*} == "$2" ]]; then
      printf '%b' "${line#*$'\t'}"
      return 0
    fi
  done <<<"$1"
  return 0
}

json_has() {
  local line
  while IFS= read -r line; do
    [[ ${line%%$'\t'*} == "$2" || ${line%%$'\t'*} == "$2".* ]] && return 0
  done <<<"$1"
  return 1
}

# ---------------------------------------------------------------------------------------------------
# Inputs

# parse_bool VARIABLE INPUT-NAME VALUE
parse_bool() {
  case "${3,,}" in
    true) printf -v "$1" true ;;
    false | "") printf -v "$1" false ;;
    *) fail "Input $2 must be true or false, got \"$3\"" "Set $2: true or $2: false" ;;
  esac
}

contains() { # WORD LIST...
  local word=$1 item
  shift
  for item in "$@"; do [[ $item == "$word" ]] && return 0; done
  return 1
}

# A remote path as the remote shell sees it: ~/x becomes x (ssh starts in the user's home).
remote_path() {
  local value=$1
  # shellcheck disable=SC2088 # a literal ~ from the input, which must not expand on this runner
  if [[ $value == "~" ]]; then value=.; elif [[ $value == "~/"* ]]; then value=${value#"~/"}; fi
  printf '%s' "$value"
}

# POSIX shell quoting for the remote command line.
quote() {
  local value=${1//\'/\'\\\'\'}
  printf "'%s'" "$value"
}

quote_all() {
  local arg out=""
  for arg in "$@"; do out+="$(quote "$arg") "; done
  printf '%s' "${out% }"
}

summary_failure() { # MESSAGE FIX CODE
  summary "### ❌ rollbridge ${command:-action} failed" "" "${3:+**$3**: }$(cell "$1")" ""
  [[ -n $2 ]] && summary "**Fix:** $(cell "$2")" ""
  return 0
}

# Hide secrets first, before anything could print them.
mask_lines() {
  local line
  while IFS= read -r line; do
    line=${line%$'\r'}
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    [[ -n $line ]] && printf '::add-mask::%s\n' "$line"
  done <<<"$1"
  return 0
}
mask_lines "${INPUT_SSH_PRIVATE_KEY:-}"
mask_lines "${INPUT_MASK:-}"

command=${INPUT_COMMAND:-deploy}
contains "$command" "${COMMANDS[@]}" || fail "Input command must be one of ${COMMANDS[*]}, got \"$command\"" "Set command: to one of ${COMMANDS[*]}"
dry_run="" skip_if_active="" insecure=""
parse_bool dry_run dry-run "${INPUT_DRY_RUN:-false}"
parse_bool skip_if_active skip-if-active "${INPUT_SKIP_IF_ACTIVE:-true}"
parse_bool insecure ssh-insecure-skip-host-key-check "${INPUT_SSH_INSECURE_SKIP_HOST_KEY_CHECK:-false}"
config=${INPUT_CONFIG:-}
release_path=${INPUT_RELEASE_PATH:-}
watch=${INPUT_WATCH:-}
ssh_host=${INPUT_SSH_HOST:-}
ssh_port=${INPUT_SSH_PORT:-22}
ssh_user=${INPUT_SSH_USER:-}
install_binary=${INPUT_INSTALL_BINARY:-}

if [[ $dry_run == true ]] && ! contains "$command" deploy legacy-takeover; then
  fail "Input dry-run applies to deploy and legacy-takeover, not $command" "Remove dry-run: true, or set command: deploy"
fi
if [[ -n $watch ]] && [[ $command != deploy ]]; then
  fail "Input watch applies to deploy, not $command" "Remove watch:, or set command: deploy"
fi
if [[ -n $release_path ]] && ! contains "$command" deploy legacy-takeover predeploy-cleanup; then
  fail "Input release-path applies to deploy, legacy-takeover and predeploy-cleanup, not $command" "Remove release-path:"
fi
if [[ -z $release_path ]] && contains "$command" deploy legacy-takeover; then
  fail "Input release-path is required for $command" "Set release-path: to the directory of the prepared release"
fi

release_id=${INPUT_RELEASE_ID:-}
revision=${INPUT_REVISION:-}
if contains "$command" deploy legacy-takeover; then
  release_id=${release_id:-${GITHUB_SHA:-}}
  revision=${revision:-${GITHUB_SHA:-}}
  [[ -n $release_id ]] || fail "Input release-id is empty and GITHUB_SHA is not set" "Set release-id:"
fi
if [[ -n $release_id ]] && ! [[ $release_id =~ $RELEASE_ID_PATTERN ]]; then
  fail "Input release-id \"$release_id\" is not a release id (letters, digits, . _ -; starting with a letter or digit; up to 200)" "Set release-id: to such an id, e.g. \${{ github.sha }}"
fi
if [[ -n $revision && $revision == *$'\n'* ]]; then
  fail "Input revision must be one line" "Set revision: to one line, e.g. \${{ github.sha }}"
fi

ssh_mode=false
if [[ -n $ssh_host ]]; then
  ssh_mode=true
  [[ -n $ssh_user ]] || fail "Input ssh-user is required with ssh-host" "Set ssh-user: to the user that runs rollbridge on $ssh_host"
  [[ -n ${INPUT_SSH_PRIVATE_KEY:-} ]] || fail "Input ssh-private-key is required with ssh-host" "Set ssh-private-key: \${{ secrets.DEPLOY_SSH_KEY }} (a key authorized for $ssh_user on $ssh_host)"
  if ! [[ $ssh_port =~ ^[0-9]{1,5}$ ]] || ((10#$ssh_port < 1 || 10#$ssh_port > 65535)); then
    fail "Input ssh-port must be a port number (1-65535), got \"$ssh_port\"" "Set ssh-port: to the port sshd listens on"
  fi
  if [[ -z ${INPUT_SSH_KNOWN_HOSTS:-} && $insecure != true ]]; then
    fail "Input ssh-known-hosts is required with ssh-host (the host key must be checked)" "Set ssh-known-hosts: to the output of \`ssh-keyscan -p $ssh_port $ssh_host\` (e.g. from a secret), or set ssh-insecure-skip-host-key-check: true"
  fi
  [[ $ssh_host =~ ^[A-Za-z0-9._:-]+$ ]] || fail "Input ssh-host \"$ssh_host\" is not a host name or address" "Set ssh-host: to a host name or IP address"
  [[ $ssh_user =~ ^[A-Za-z0-9._][A-Za-z0-9._-]*$ ]] || fail "Input ssh-user \"$ssh_user\" is not a user name" "Set ssh-user: to a login name"
  if [[ -n $release_path && ! -d $release_path ]]; then
    fail "Input release-path \"$release_path\" is not a directory on this runner (it is uploaded to the host)" "Build the release into that directory in an earlier step, or fix release-path:"
  fi
  if [[ -n $install_binary && ! -f $install_binary ]]; then
    fail "Input install-binary \"$install_binary\" is not a file on this runner" "Download or build the rollbridge binary in an earlier step, or fix install-binary:"
  fi
elif [[ -n $install_binary ]]; then
  fail "Input install-binary needs ssh-host (on this runner, put the binary on PATH or set binary:)" "Remove install-binary:, or set ssh-host:"
fi

binary=${INPUT_BINARY:-}
if [[ -z $binary ]]; then
  if [[ -n $install_binary ]]; then binary=.local/bin/rollbridge; else binary=rollbridge; fi
fi
if [[ $ssh_mode == true ]]; then
  binary=$(remote_path "$binary")
  [[ -n $config ]] && config=$(remote_path "$config")
  if [[ -n $install_binary && $binary != */* ]]; then
    fail "Input binary \"$binary\" must be a path when install-binary is set (it is where the binary is installed)" "Set binary: to a path such as .local/bin/rollbridge or /usr/local/bin/rollbridge"
  fi
fi

extra_args=()
while IFS= read -r line; do
  line=${line%$'\r'}
  [[ -n ${line//[[:space:]]/} ]] && extra_args+=("$line")
done <<<"${INPUT_ARGS:-}"

# ---------------------------------------------------------------------------------------------------
# SSH: one authenticated master connection, reused by every command; removed (key included) on exit.

ssh_dir=""
ssh_opts=()
ssh_target="$ssh_user@$ssh_host"
remote_scratch=""
cleanup() {
  if [[ -n $ssh_dir ]]; then
    [[ -z $remote_scratch ]] || remote "rm -rf -- $(quote "$remote_scratch")" </dev/null || true
    ssh "${ssh_opts[@]}" -O exit "$ssh_target" >/dev/null 2>&1 || true
    rm -rf "$ssh_dir"
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

remote() { # COMMAND-LINE (already quoted)
  ssh "${ssh_opts[@]}" -o ControlMaster=no -T "$ssh_target" "$1"
}

if [[ $ssh_mode == true ]]; then
  # A short directory: the control socket path must fit in ~100 bytes.
  ssh_dir=$(mktemp -d /tmp/rb-ssh.XXXXXX)
  printf '%s\n' "${INPUT_SSH_PRIVATE_KEY//$'\r'/}" >"$ssh_dir/key"
  chmod 600 "$ssh_dir/key"
  ssh_opts=(-i "$ssh_dir/key" -p "$ssh_port" -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=30
    -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o LogLevel=ERROR -o "ControlPath=$ssh_dir/control")
  if [[ $insecure == true ]]; then
    annotate warning "Host key checking is off for $ssh_host (ssh-insecure-skip-host-key-check: true): anyone between this runner and the host can impersonate it"
    ssh_opts+=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null)
  else
    printf '%s\n' "${INPUT_SSH_KNOWN_HOSTS//$'\r'/}" >"$ssh_dir/known_hosts"
    ssh_opts+=(-o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$ssh_dir/known_hosts" -o GlobalKnownHostsFile=/dev/null)
  fi
  # ControlPersist bounds a master left behind by a cancelled job: it ends 2 minutes after its last use.
  if ! ssh "${ssh_opts[@]}" -o ControlMaster=yes -o ControlPersist=120 -f -N "$ssh_target" </dev/null >/dev/null 2>"$ssh_dir/connect.log"; then
    sed 's/^/  /' "$ssh_dir/connect.log" >&2
    # ssh's last line says why: "Host key verification failed.", "Permission denied (publickey).", …
    reason=""
    while IFS= read -r line; do
      line=${line%$'\r'}
      [[ -n ${line//[[:space:]]/} ]] && reason=$line
    done <"$ssh_dir/connect.log"
    fail "SSH to $ssh_target port $ssh_port failed: ${reason:-no reason given}" "Check ssh-host, ssh-port, ssh-user, that ssh-private-key is authorized for that user, and that ssh-known-hosts holds the host's key for [$ssh_host]:$ssh_port"
  fi
  echo "Connected to $ssh_target (port $ssh_port)"

  if [[ -n $install_binary ]]; then
    echo "::group::Binary $binary on $ssh_host"
    local_sum=$(sha256sum "$install_binary" | cut -d' ' -f1)
    remote_sum=$(remote "if [ -f $(quote "$binary") ]; then sha256sum $(quote "$binary"); fi" | cut -d' ' -f1)
    if [[ $local_sum == "$remote_sum" ]]; then
      echo "$binary is up to date (sha256 $local_sum)"
    else
      before=$(remote "$(quote "$binary") --version 2>/dev/null || echo none")
      partial="$(dirname "$binary")/.rollbridge-install-$(random_token)"
      if ! remote "mkdir -p $(quote "$(dirname "$binary")") && cat > $(quote "$partial") && chmod 755 $(quote "$partial") && $(quote "$partial") --version >/dev/null && mv -f $(quote "$partial") $(quote "$binary") || { rm -f $(quote "$partial"); exit 1; }" <"$install_binary"; then
        echo "::endgroup::"
        fail "Installing $install_binary as $binary on $ssh_host failed" "Check that $ssh_user may write $(dirname "$binary") on the host and that the binary runs there (\`$binary --version\`)"
      fi
      after=$(remote "$(quote "$binary") --version")
      echo "Installed $binary: ${before} -> ${after}"
    fi
    echo "::endgroup::"
  fi

  if [[ -n $release_path ]] && contains "$command" deploy legacy-takeover predeploy-cleanup; then
    releases_dir=${INPUT_RELEASES_DIR:-}
    if [[ -z $releases_dir ]]; then
      if [[ -n $config ]]; then releases_dir="$(dirname "$config")/releases"; else releases_dir=releases; fi
    fi
    releases_dir=$(remote_path "$releases_dir")
    upload_id=${release_id:-$(basename "$release_path")}
    remote_release="${releases_dir%/}/$upload_id"
    if [[ $(remote "if [ -e $(quote "$remote_release") ]; then echo exists; fi") == exists ]]; then
      echo "Release directory $remote_release already exists on $ssh_host: not uploaded again (a release id names one release)"
    elif [[ $dry_run == true ]]; then
      # A dry run changes nothing on the host: the release goes to a temporary directory, removed at exit.
      # shellcheck disable=SC2016 # expands on the host
      remote_scratch=$(remote 'mktemp -d "${TMPDIR:-/tmp}/rollbridge-dry-run.XXXXXX"')
      echo "::group::Uploading $release_path to $ssh_host:$remote_scratch for the dry run (removed afterwards)"
      if ! tar -C "$release_path" -cf - . | remote "tar -C $(quote "$remote_scratch") -xf -"; then
        echo "::endgroup::"
        fail "Uploading $release_path to $ssh_host:$remote_scratch failed" "Check that $ssh_user may write its temporary directory on the host and that it has room"
      fi
      echo "::endgroup::"
      remote_release=$remote_scratch
    else
      echo "::group::Uploading $release_path to $ssh_host:$remote_release"
      partial="${releases_dir%/}/.upload-$upload_id-$(random_token)"
      files=$(find "$release_path" -type f | wc -l)
      kilobytes=$(du -sk "$release_path" | cut -f1)
      started=$(date +%s%3N)
      if ! tar -C "$release_path" -cf - . | remote "mkdir -p $(quote "$releases_dir") && mkdir $(quote "$partial") && tar -C $(quote "$partial") -xf - && [ ! -e $(quote "$remote_release") ] && mv $(quote "$partial") $(quote "$remote_release") || { rm -rf $(quote "$partial"); exit 1; }"; then
        echo "::endgroup::"
        fail "Uploading $release_path to $ssh_host:$remote_release failed" "Check that $ssh_user may write $releases_dir on the host (releases-dir:) and that it has room"
      fi
      echo "Uploaded $files files ($kilobytes KiB) in $(format_ms $(($(date +%s%3N) - started)))"
      echo "::endgroup::"
    fi
    release_path=$remote_release
  fi
fi

# ---------------------------------------------------------------------------------------------------
# Run rollbridge

argv=("$binary" "$command")
[[ -n $config ]] && argv+=(--config "$config")
case $command in
  deploy | legacy-takeover)
    argv+=(--release-path "$release_path" --release-id "$release_id")
    [[ -n $revision ]] && argv+=(--revision "$revision")
    [[ -n $watch ]] && argv+=(--watch "$watch")
    [[ $dry_run == true ]] && argv+=(--dry-run)
    [[ $command == deploy && $dry_run == false && $skip_if_active == true ]] && argv+=(--skip-if-active)
    ;;
  rollback)
    [[ -n $release_id ]] && argv+=(--release-id "$release_id")
    ;;
  predeploy-cleanup)
    [[ -n $release_path ]] && argv+=(--release-path "$release_path")
    ;;
esac
argv+=(--json)
streaming=false
if contains "$command" "${STREAMING_COMMANDS[@]}"; then
  argv+=(--stream)
  streaming=true
fi
argv+=("${extra_args[@]}")

where="this runner"
[[ $ssh_mode == true ]] && where="$ssh_target port $ssh_port"

phase_rows=()
record_phase() { # FLAT
  local phase detail duration
  phase=$(json_get "$1" phase)
  detail=""
  for key in processId releaseId previousReleaseId pid port detail; do
    local value
    value=$(json_get "$1" "$key")
    [[ -n $value ]] && detail+="${detail:+ }$key $value"
  done
  duration=$(json_get "$1" durationMs)
  echo "  $phase${detail:+ ($detail)}${duration:+ $(format_ms "$duration")}"
  phase_rows+=("| $(cell "$phase") | $(cell "$detail") | $(format_ms "$duration") |")
}

echo "::group::rollbridge $command on $where"
echo "$ $(quote_all "${argv[@]}")"
result=""
unparsed=""
set +e
{
  if [[ $ssh_mode == true ]]; then
    remote "ROLLBRIDGE_OUTPUT=json; export ROLLBRIDGE_OUTPUT; exec $(quote_all "${argv[@]}")"
  else
    ROLLBRIDGE_OUTPUT=json "${argv[@]}"
  fi
} </dev/null | while IFS= read -r line || [[ -n $line ]]; do
  if [[ $streaming == true ]] && flat=$(json_flatten "$line" 2>/dev/null) && [[ -n $flat ]]; then
    case $(json_get "$flat" type) in
      phase) record_phase "$flat" ;;
      result | error) result=$line ;;
      *) echo "$line" ;;
    esac
  else
    unparsed+="$line"$'\n'
    echo "$line"
  fi
done
statuses=("${PIPESTATUS[@]}")
set -e
exit_code=${statuses[0]}
echo "::endgroup::"

if [[ -z $result && -n ${unparsed//[[:space:]]/} ]]; then result=$unparsed; fi
flat=""
if [[ -n $result ]]; then flat=$(json_flatten "$result" 2>/dev/null) || flat=""; fi

if [[ -z $flat ]]; then
  if [[ $exit_code == 127 ]]; then
    why="the binary \"$binary\" was not found on $where"
    fix="Set binary: to the path of rollbridge on $where, or install it there (install-binary: over SSH)"
  elif [[ $ssh_mode == true && $exit_code == 255 ]]; then
    why="the SSH connection to $ssh_target broke"
    fix="Check that sshd on $ssh_host keeps the connection open (ServerAliveInterval) and retry"
  else
    why="it exited with status $exit_code"
    fix="Read the rollbridge output above, or run the same command on $where"
  fi
  set_output changed false
  fail "rollbridge $command printed no JSON result: $why" "$fix"
fi

set_output result "${result%$'\n'}"
error_code=$(json_get "$flat" error.code)
if [[ -n $error_code || $exit_code != 0 ]]; then
  message=$(json_get "$flat" error.message)
  fix=$(json_get "$flat" error.fix)
  [[ -n $message ]] || message="rollbridge $command exited with status $exit_code"
  set_output changed false
  annotate error "$message${fix:+$'\n'Fix: $fix}" "rollbridge ${error_code:-$command}"
  summary "### ❌ rollbridge $command failed on $where" "" "**${error_code:-exit $exit_code}**: $(cell "$message")" ""
  [[ -n $fix ]] && summary "**Fix:** $(cell "$fix")" ""
  if ((${#phase_rows[@]} > 0)); then summary "| Phase | Detail | Duration |" "| --- | --- | --- |" "${phase_rows[@]}" ""; fi
  exit 1
fi

active=$(json_get "$flat" activeReleaseId)
previous=$(json_get "$flat" previousReleaseId)
changed=$(json_get "$flat" changed)
duration=$(json_get "$flat" durationMs)
[[ $changed == true ]] || changed=false
set_output active-release "$active"
set_output previous-release "$previous"
set_output changed "$changed"
set_output duration-ms "$duration"

# Phases from the result when they did not stream (commands without --stream).
if ((${#phase_rows[@]} == 0)); then
  for ((index = 0; ; index++)); do
    json_has "$flat" "phases.$index" || break
    phase_flat=$(while IFS= read -r entry; do [[ $entry == "phases.$index."* ]] && printf '%s\n' "${entry#"phases.$index."}"; done <<<"$flat")
    record_phase "$phase_flat" >/dev/null
  done
fi

headline="release ${active:-(none)} is active"
[[ $(json_get "$flat" dryRun) == true ]] && headline="dry run: nothing was changed"
[[ $(json_get "$flat" skipped) == true ]] && headline="release ${active:-$release_id} was already active: nothing was changed"
echo "✓ rollbridge $command: $headline (previous: ${previous:-none}; changed: $changed${duration:+; $(format_ms "$duration")})"

summary "### ✅ rollbridge $command: $(cell "$headline")" "" "| | |" "| --- | --- |" \
  "| Where | $(cell "$where") |" "| Before | ${previous:+\`}$(cell "${previous:-none}")${previous:+\`} |" \
  "| After | ${active:+\`}$(cell "${active:-none}")${active:+\`} |" "| Changed | $changed |"
[[ -n $duration ]] && summary "| Duration | $(format_ms "$duration") |"
[[ $command == deploy || $command == legacy-takeover ]] && summary "| Revision | \`$(cell "$revision")\` |"
summary ""
if [[ $(json_get "$flat" dryRun) == true ]]; then
  plan_rows=()
  for kind in keep start; do
    for ((index = 0; ; index++)); do
      json_has "$flat" "plan.$kind.$index" || break
      plan_rows+=("| $kind | $(cell "$(json_get "$flat" "plan.$kind.$index.processId")") | $(cell "$(json_get "$flat" "plan.$kind.$index.policy")") |")
    done
  done
  drained=$(json_get "$flat" plan.drain.releaseId)
  [[ -n $drained ]] && plan_rows+=("| drain | release \`$(cell "$drained")\` | up to $(format_ms "$(json_get "$flat" plan.drain.timeoutMs)") |")
  if ((${#plan_rows[@]} > 0)); then summary "| Plan | Process | Detail |" "| --- | --- | --- |" "${plan_rows[@]}" ""; fi
fi
if ((${#phase_rows[@]} > 0)); then summary "| Phase | Detail | Duration |" "| --- | --- | --- |" "${phase_rows[@]}" ""; fi
