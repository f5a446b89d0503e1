import { BerthCommand, BerthError, Command, Option } from '@berth/cli-kit';

/** --tls-verify takes podman's forms: bare (true), =true, =false. */
function tlsVerify(value: string | boolean | undefined): boolean {
  if (value === undefined || value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new BerthError('E_USAGE', `--tls-verify=${String(value)}: expected true or false`, { exitCode: 2 });
}

/** The auth file: --authfile, else podman's default (REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, /run/containers/UID). */
async function authFile(flag: string | undefined): Promise<string> {
  if (flag !== undefined && flag !== '') return flag;
  const { authFileCandidates } = await import('@berth/registry');
  return authFileCandidates(process.env)[0]!;
}

/** `berth login [-u USER] [-p PASS | --password-stdin] [--authfile F] [--tls-verify=B] [--cert-dir D] [--get-login] REGISTRY`: podman login. */
export class LoginCommand extends BerthCommand {
  static override paths = [['login']];
  static override usage = Command.Usage({
    description: 'Log in to a container registry',
    details: `
      Checks USER and PASSWORD against the registry's API (GET /v2/, Basic or a Bearer token from the realm it names) and only then stores them in the auth file podman uses: \`$REGISTRY_AUTH_FILE\`, else \`$XDG_RUNTIME_DIR/containers/auth.json\`, else \`/run/containers/UID/auth.json\` (\`--authfile\` overrides). \`berth pull\`, \`berth push\`, \`berth build\` and berth-pull read that file. Without -u/-p berth asks on the terminal (the password is not echoed). With no credentials given and a login stored, the stored one is checked again. \`--get-login\` prints the stored user name.
    `,
    examples: [
      ['Log in to a local plain-HTTP registry', '$0 login --tls-verify=false -u alice 127.0.0.1:5000'],
      ['Password from a file, for scripts', 'cat pw | $0 login -u alice --password-stdin registry.example.com'],
      ['Who am I logged in as', '$0 login --get-login registry.example.com'],
    ],
  });
  static override explain = `
containers-auth.json(5): the auth file maps host[:port] (or host/namespace/repo)
to {"auth": base64(USER:PASSWORD)}. Before writing it, the credentials are
tried against the distribution API: GET /v2/ answers 401 with a
WWW-Authenticate challenge; Basic means the same request with
Authorization: Basic; Bearer means GET REALM?service=S&account=USER with them
(docker's token spec) and GET /v2/ with the token. Only a 200 stores the login:
the file is rewritten atomically (temp file 0600, fsync, rename) keeping every
other entry.
`;

  username = Option.String('-u,--username', { description: 'User name for the registry' });
  password = Option.String('-p,--password', { description: 'Password for the registry (visible in ps; prefer --password-stdin)' });
  passwordStdin = Option.Boolean('--password-stdin', false, { description: 'Read the password from stdin' });
  authfile = Option.String('--authfile', { description: 'Auth file (default: podman\'s; env REGISTRY_AUTH_FILE)' });
  tlsVerifyFlag = Option.String('--tls-verify', { tolerateBoolean: true, description: 'Require HTTPS and verify certificates (default true)' });
  certDir = Option.String('--cert-dir', { description: 'Directory of *.crt CAs and NAME.cert/NAME.key client certificates (default: certs.d for the registry)' });
  getLogin = Option.Boolean('--get-login', false, { description: 'Print the user name stored for REGISTRY' });
  verbose = Option.Boolean('-v,--verbose', false, { description: 'Say which auth file was written' });
  registryArg = Option.String({ name: 'REGISTRY', required: false });

  async perform(): Promise<unknown> {
    const { loginKey, keyHost, readAuthDocument, entryFor, storeLogin } = await import('../login-auth.ts');
    if (this.registryArg === undefined) {
      throw new BerthError('E_USAGE', 'login needs a REGISTRY (berth has no default registry to log in to)', { exitCode: 2 });
    }
    const key = loginKey(this.registryArg);
    const file = await authFile(this.authfile);
    if (this.getLogin) {
      const entry = entryFor(await readAuthDocument(file), key);
      if (!entry) throw new BerthError('E_LOGIN', `not logged into ${key}`);
      this.context.stdout.write(`${entry.username}\n`);
      return undefined;
    }
    if (this.password !== undefined && this.passwordStdin) {
      throw new BerthError('E_USAGE', '--password and --password-stdin are mutually exclusive: pass one', { exitCode: 2 });
    }
    if (this.passwordStdin && this.username === undefined) {
      throw new BerthError('E_USAGE', 'Must provide --username with --password-stdin', { exitCode: 2 });
    }
    const insecure = !tlsVerify(this.tlsVerifyFlag);
    const host = keyHost(key);
    // --cert-dir, else certs.d for the host (containers-certs.d(5)), as pulls use them.
    const certDir = this.certDir;
    const { checkLogin, InvalidCredentials } = await import('../login-check.ts');

    // No credentials given and a login stored: check that one, as podman does.
    if (this.username === undefined && this.password === undefined && !this.passwordStdin) {
      const stored = entryFor(await readAuthDocument(file), key);
      if (stored) {
        this.context.stdout.write(`Authenticating with existing credentials for ${key}\n`);
        try {
          await checkLogin({ registry: host, username: stored.username, password: stored.password, insecure, certDir });
          this.context.stdout.write(`Existing credentials are valid. Already logged in to ${key}\n`);
          return undefined;
        } catch (err) {
          // Only a refusal means the stored login is stale; an unreachable registry is reported as it is.
          if (!(err instanceof InvalidCredentials) || !process.stdin.isTTY) throw err;
          process.stderr.write('Existing credentials are invalid, please enter valid username and password\n');
        }
      }
    }

    let username = this.username;
    let password = this.password;
    if (this.passwordStdin) password = stripNewline(await readAll(process.stdin));
    if (username === undefined || password === undefined) {
      // Prompts need a person: from a pipe or /dev/null there is nobody to answer.
      if (!process.stdin.isTTY) {
        throw new BerthError('E_USAGE', `no ${username === undefined ? 'username' : 'password'} given and stdin is not a terminal to ask on: pass -u USER with -p PASSWORD or --password-stdin`, { exitCode: 2 });
      }
      const { promptLine } = await import('../login-prompt.ts');
      if (username === undefined) username = (await promptLine('Username: ', { hidden: false })).trim();
      if (password === undefined) password = await promptLine('Password: ', { hidden: true });
    }
    if (username === '') throw new BerthError('E_USAGE', 'the username is empty', { exitCode: 2 });
    if (username.includes(':')) throw new BerthError('E_USAGE', `username "${username}" contains ":", which the auth file's USER:PASSWORD cannot hold`, { exitCode: 2 });
    if (password === '') throw new BerthError('E_USAGE', 'the password is empty', { exitCode: 2 });

    // The check comes first: rejected credentials leave the auth file untouched.
    await checkLogin({ registry: host, username, password, insecure, certDir });
    await storeLogin(file, key, username, password);
    if (this.verbose) process.stderr.write(`Used: ${file}\n`);
    this.context.stdout.write('Login Succeeded!\n');
    return undefined;
  }
}

/** `berth logout [--authfile F] [-a|--all] [REGISTRY]`: podman logout. */
export class LogoutCommand extends BerthCommand {
  static override paths = [['logout']];
  static override usage = Command.Usage({
    description: 'Log out of a container registry',
    details: `
      Removes the login stored for REGISTRY from the auth file \`berth login\` writes (\`--authfile\` overrides), keeping every other entry; \`--all\` removes every login in that file.
    `,
    examples: [
      ['Forget one registry', '$0 logout registry.example.com'],
      ['Forget them all', '$0 logout --all'],
    ],
  });
  static override explain = `
containers-auth.json(5): the entry for host[:port] (or host/namespace/repo) is
deleted from "auths" and the file rewritten atomically (temp file 0600, fsync,
rename); --all empties "auths" and drops "credHelpers", as containers/image's
RemoveAllAuthentication does. Nothing is sent to the registry.
`;

  authfile = Option.String('--authfile', { description: 'Auth file (default: podman\'s; env REGISTRY_AUTH_FILE)' });
  all = Option.Boolean('-a,--all', false, { description: 'Remove every stored login' });
  registryArg = Option.String({ name: 'REGISTRY', required: false });

  async perform(): Promise<unknown> {
    const { loginKey, removeLogin, removeAllLogins } = await import('../login-auth.ts');
    const file = await authFile(this.authfile);
    if (this.all) {
      if (this.registryArg !== undefined) throw new BerthError('E_USAGE', '--all and a REGISTRY do not go together: pass one', { exitCode: 2 });
      await removeAllLogins(file);
      this.context.stdout.write('Removed login credentials for all registries\n');
      return undefined;
    }
    if (this.registryArg === undefined) throw new BerthError('E_USAGE', 'logout needs a REGISTRY, or --all', { exitCode: 2 });
    const key = loginKey(this.registryArg);
    if (!(await removeLogin(file, key))) throw new BerthError('E_LOGIN', `not logged into ${key}`);
    this.context.stdout.write(`Removed login credentials for ${key}\n`);
    return undefined;
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** `echo pw |` adds a newline that is not part of the password (podman strips one, and a CR before it). */
function stripNewline(s: string): string {
  return s.replace(/\r?\n$/, '');
}
