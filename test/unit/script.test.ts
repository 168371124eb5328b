import { describe, expect, it } from 'vitest';
import { needsEval, sendsEval } from '../../src/tiers/redis/script.js';

function reply(message: string): Error {
  const error = new Error(message);
  error.name = 'ReplyError';
  return error;
}

describe('when a script goes as EVAL', () => {
  it('after NOSCRIPT, once, and for good after the server refuses EVALSHA itself', () => {
    const client = {};
    expect(needsEval(reply('NOSCRIPT No matching script. Please use EVAL.'), client)).toBe(true);
    expect(sendsEval(client)).toBe(false);
    expect(needsEval(reply("ERR unknown command 'evalsha', with args beginning with: 'abc' "), client)).toBe(
      true,
    );
    expect(sendsEval(client)).toBe(true);
    const denied = {};
    const acl = "NOPERM User app has no permissions to run the 'evalsha' command";
    expect(needsEval(reply(acl), denied)).toBe(true);
    expect(sendsEval(denied)).toBe(true);
  });

  it('never for other errors: a script error, a refused key, a lost connection', () => {
    const client = {};
    expect(needsEval(reply('ERR Error running script (call to f_abc): @user_script:1: oops'), client)).toBe(
      false,
    );
    expect(needsEval(reply('NOPERM No permissions to access a key'), client)).toBe(false);
    expect(needsEval(new Error('Connection is closed.'), client)).toBe(false);
    expect(sendsEval(client)).toBe(false);
  });
});
