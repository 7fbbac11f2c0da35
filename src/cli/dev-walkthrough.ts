/**
 * The copy-paste walkthrough of the dev stack, as one bash script: the banner
 * prints it, `<stateDir>/walkthrough.sh` holds it, and `npm run demo` runs it.
 * It reads every secret from dev.json and never echoes one, nor puts one on a
 * command line (any local user can read those in /proc/PID/cmdline): curl
 * reads secrets from stdin (`--data-urlencode name@-`), fed by `j` (dev.json)
 * or by bash's builtin printf, which starts no process, and the second secret
 * of a request from a pipe (`--data-urlencode name@<(j …)`); git gets its
 * header from its environment (only its own user can read /proc/PID/environ).
 *
 * Steps 1 and 2 are the two requests of the question this project answers
 * (client credentials at Entra ID, then a token exchange at GitLab's
 * `/oauth/token` with `client_id` and `client_secret`), unchanged but for the
 * host names and dev.json's values: the same parameters, in the same order.
 *
 * It stops at the first command that fails (`set -euo pipefail`) and its EXIT
 * trap says which step that was, so no later step claims success. The file is
 * a strict script; the printed copy runs the same lines in a subshell, where
 * `set -e` and the trap end the subshell, never the user's interactive shell,
 * and it holds no `exit`.
 */

/** The steps, shared by the file and the printed copy (no shebang, no `set`). */
function walkthroughBody(devJsonPath: string): string {
  const dj = JSON.stringify(devJsonPath);
  return `DEV=${dj}
j() { node -e 'const [f,k]=process.argv.slice(1);let v;try{v=JSON.parse(require("fs").readFileSync(f,"utf8"))}catch(e){console.error("cannot read "+f+" ("+(e.code||e.message)+"): is the dev stack running?");process.exit(1)};for(const p of k.split("."))v=v[p];process.stdout.write(String(v))' "$DEV" "$1"; }
field() { node -e 'const b=require("fs").readFileSync(0,"utf8");let v;try{v=JSON.parse(b)[process.argv[1]]}catch{};if(typeof v!=="string"){console.error("unexpected answer: "+b.slice(0,200).replace(/[A-Za-z0-9_-]{20,}/g,"[redacted]"));process.exit(1)};process.stdout.write(v)' "$1"; }
# The first command that fails stops the walkthrough (set -e); this trap says in which step, and cleans up.
WORK=""; STEP=0; WHAT="read $DEV"
step() { STEP=$1; WHAT=$2; }
trap 'rc=$?; [ -z "$WORK" ] || rm -rf "$WORK"; if [ "$rc" -ne 0 ]; then echo "step $STEP failed: $WHAT; the steps after it did not run" >&2; fi' EXIT
CA=$(j caFile); STS=$(j sts.url); GITLAB=$(j gitlab.url); PROJECT=$(j gitlab.project)

# Secrets reach curl on stdin (name@-) or a pipe (name@<(…)), never on a command line, where any local
# user could read them.
# 1. The pipeline gets an Entra ID access token for the STS: the first request of the question,
#      curl -X POST https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token -d client_id=… \\
#        -d client_secret=… -d grant_type=client_credentials -d scope=api://<app>/.default
#    with the Entra ID emulator as the host and dev.json's values.
step 1 "get an Entra ID token (client credentials)"
ENTRA_TOKEN=$(j entra.clientSecret | curl -sS --cacert "$CA" -X POST "$(j entra.authorityHost)/$(j entra.tenantId)/oauth2/v2.0/token" \\
  -d client_id="$(j entra.clientId)" --data-urlencode client_secret@- \\
  -d grant_type=client_credentials -d scope="$(j entra.scope)" | field access_token)
echo "1. got an Entra ID token for $(j entra.scope)"

# 2. It exchanges that token for a GitLab token: the second request of the question,
#      curl -X POST https://gitlab.example.com/oauth/token \\
#        -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange -d subject_token=<entra token> \\
#        -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \\
#        -d client_id=<gitlab app id> -d client_secret=<gitlab app secret>
#    with the STS as the host and dev.json's dev client. It names no project: the STS uses the only
#    one this identity may get (add resource=<project URL> when there are several).
step 2 "exchange it at the STS ($STS/oauth/token)"
GITLAB_TOKEN=$(printf %s "$ENTRA_TOKEN" | curl -sS -X POST "$STS/oauth/token" \\
  -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange --data-urlencode subject_token@- \\
  -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \\
  -d client_id="$(j sts.clientId)" --data-urlencode client_secret@<(j sts.clientSecret) | field access_token)
echo "2. exchanged it at $STS/oauth/token for a GitLab project access token on $PROJECT"

# 3. git clones with it (the token travels in git's environment, not on its command line or in the URL).
step 3 "git clone $GITLAB/$PROJECT.git with that token"
WORK=$(mktemp -d)
clone() {
  GIT_TERMINAL_PROMPT=0 GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader \\
  GIT_CONFIG_VALUE_0="Authorization: Basic $(printf 'oauth2:%s' "$GITLAB_TOKEN" | base64 | tr -d '\\n')" \\
  git clone -q "$GITLAB/$PROJECT.git" "$WORK/$1"
}
clone first
test -f "$WORK/first/README.md"
echo "3. git clone of $PROJECT worked"

# 4. The pipeline revokes the token when it is done (RFC 7009).
step 4 "revoke the token at the STS ($STS/revoke)"
printf %s "$GITLAB_TOKEN" | curl -sS -f -o /dev/null "$STS/revoke" --data-urlencode token@-
echo "4. revoked the token"

# 5. The token no longer works.
step 5 "check that the revoked token no longer clones"
if clone second 2>/dev/null; then echo "FAIL: the clone still worked after revocation" >&2; false; fi
echo "5. a clone after revocation is refused, as it should be"
`;
}

/** `<stateDir>/walkthrough.sh`: a strict script (its failure is the script's exit code). */
export function walkthroughScript(devJsonPath: string): string {
  return `#!/usr/bin/env bash\nset -euo pipefail\n${walkthroughBody(devJsonPath)}`;
}

/**
 * The copy the banner prints, for pasting into an interactive bash: the same
 * steps, as strict, in a subshell, so the first failing step ends the
 * subshell and the user's shell stays open (a pasted `exit` or `set -e` would
 * close it).
 */
export function walkthroughForShell(devJsonPath: string): string {
  return `(\nset -euo pipefail\n${walkthroughBody(devJsonPath)})\n`;
}
