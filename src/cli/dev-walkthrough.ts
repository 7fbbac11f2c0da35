/**
 * The copy-paste walkthrough of the dev stack, as one bash script: the banner
 * prints it, `<stateDir>/walkthrough.sh` holds it, and `npm run demo` runs it.
 * It reads every secret from dev.json and never echoes one, nor puts one on a
 * command line (any local user can read those in /proc/PID/cmdline): curl
 * reads secrets from stdin (`--data-urlencode name@-`), fed by `j` (dev.json)
 * or by bash's builtin printf, which starts no process; git gets its header
 * from its environment (only its own user can read /proc/PID/environ).
 */
export function walkthroughScript(devJsonPath: string): string {
  const dj = JSON.stringify(devJsonPath);
  return `#!/usr/bin/env bash
set -euo pipefail
DEV=${dj}
j() { node -e 'let v=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));for(const k of process.argv[2].split("."))v=v[k];process.stdout.write(String(v))' "$DEV" "$1"; }
field() { node -e 'const b=require("fs").readFileSync(0,"utf8");let v;try{v=JSON.parse(b)[process.argv[1]]}catch{};if(typeof v!=="string"){console.error("unexpected answer: "+b.slice(0,200).replace(/[A-Za-z0-9_-]{20,}/g,"[redacted]"));process.exit(1)};process.stdout.write(v)' "$1"; }
CA=$(j caFile); STS=$(j sts.url); GITLAB=$(j gitlab.url); PROJECT=$(j gitlab.project)

# Secrets reach curl on stdin (name@-), never on a command line, where any local user could read them.
# 1. The pipeline gets an Entra ID access token for the STS (client credentials, v2 endpoint).
ENTRA_TOKEN=$(j entra.clientSecret | curl -sS --cacert "$CA" "$(j entra.authorityHost)/$(j entra.tenantId)/oauth2/v2.0/token" \\
  -d grant_type=client_credentials -d client_id="$(j entra.clientId)" \\
  --data-urlencode client_secret@- --data-urlencode scope="$(j entra.scope)" | field access_token)
echo "1. got an Entra ID token for $(j entra.scope)"

# 2. It exchanges that token at the STS (RFC 8693) for a GitLab token on the project.
GITLAB_TOKEN=$(printf %s "$ENTRA_TOKEN" | curl -sS "$STS/token" \\
  -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \\
  -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \\
  --data-urlencode subject_token@- \\
  --data-urlencode resource="$GITLAB/$PROJECT" -d scope="read_repository" | field access_token)
echo "2. exchanged it for a GitLab project access token (read_repository)"

# 3. git clones with it (the token travels in git's environment, not on its command line or in the URL).
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
printf %s "$GITLAB_TOKEN" | curl -sS -o /dev/null "$STS/revoke" --data-urlencode token@-
echo "4. revoked the token"

# 5. The token no longer works.
if clone second 2>/dev/null; then echo "FAIL: the clone still worked after revocation" >&2; exit 1; fi
echo "5. a clone after revocation is refused, as it should be"
rm -rf "$WORK"
`;
}
