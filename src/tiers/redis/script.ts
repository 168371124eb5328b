/**
 * Lua scripts as every Redis path runs them: by EVALSHA, so the body is sent once rather than
 * with every call, and by EVAL when that cannot work. One rule for when that is, used by the
 * fills, deletes, repairs and the bus's replay log alike.
 */
import { createHash } from 'node:crypto';
import { isReplyError, type RedisClient } from './client.js';

type ScriptArg = string | Buffer | number;

/**
 * Clients whose server refuses EVALSHA itself (renamed away with rename-command, or denied by
 * an ACL that allows EVAL): every script goes to them as EVAL from then on, instead of paying a
 * refused EVALSHA first each time.
 */
const evalOnly = new WeakSet<object>();

/**
 * Whether `error` (EVALSHA's) means the script must go as EVAL: the server does not hold it
 * (NOSCRIPT: restarted, flushed, failed over), or does not run EVALSHA at all, in which case
 * `client` is remembered as one to send EVAL to (see evalOnly).
 */
export function needsEval(error: unknown, client: object): boolean {
  if (!isReplyError(error)) return false;
  const message = error.message;
  if (message.startsWith('NOSCRIPT')) return true;
  if (!/\bevalsha\b/i.test(message) || !/^(ERR unknown command|NOPERM)/.test(message)) return false;
  evalOnly.add(client);
  return true;
}

/** Whether scripts go to `client` as EVAL directly (see evalOnly). */
export function sendsEval(client: object): boolean {
  return evalOnly.has(client);
}

/** A Lua script sent by EVALSHA, and by EVAL when that cannot work (see needsEval). */
export class Script {
  readonly sha: string;
  constructor(readonly body: string) {
    this.sha = createHash('sha1').update(body).digest('hex');
  }

  run(client: RedisClient, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
    if (evalOnly.has(client)) return client.eval(this.body, keys.length, ...keys, ...args);
    // No async frame: this is every fill.
    return client.evalsha(this.sha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (!needsEval(error, client)) throw error;
      return client.eval(this.body, keys.length, ...keys, ...args);
    });
  }
}
