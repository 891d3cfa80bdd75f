/** The builder's config keys: publish-to (a repository), sign-key (an absolute key file). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { SquashtreeError } from '../../src/errors.js';

const FILE = '/etc/squashtree/test.toml';
const tree = (body: string): string => `[tree.gentoo]\ndir = "/var/db/repos/gentoo"\n${body}`;

function refused(text: string, key: string): SquashtreeError {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    assert.ok(e instanceof SquashtreeError);
    assert.equal(e.code, 'E_CONFIG_VALUE');
    assert.ok(e.message.includes(key), e.message);
    assert.ok(e.hint);
    return e;
  }
  assert.fail('the config was accepted');
}

describe('config: publish-to and sign-key', () => {
  it('takes them per tree and from [defaults]', () => {
    const [t] = parseConfig(
      `[defaults]\nsign-key = "/etc/squashtree/keys/squashtree-sign.key"\n${tree('publish-to = "127.0.0.1:5000/gentoo/repo"\nplain-http = true\n')}`,
      FILE,
    );
    assert.equal(t?.publishTo, '127.0.0.1:5000/gentoo/repo');
    assert.equal(t?.signKey, '/etc/squashtree/keys/squashtree-sign.key');
    assert.equal(t?.plainHttp, true);
  });

  it('refuses a publish-to that names a tag, or is no reference, and a relative sign-key', () => {
    assert.match(
      refused(tree('publish-to = "registry.example.org/gentoo/repo:latest"\n'), 'publish-to')
        .message,
      /tag or digest/,
    );
    refused(tree('publish-to = "https://registry.example.org/x"\n'), 'publish-to');
    refused(tree('sign-key = "keys/sign.key"\n'), 'sign-key');
  });
});
