import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ConfigEntry,
  credentialUrlMatches,
  effectiveHelpers,
  isOurHelper,
  parseConfigList,
} from './git-helpers.ts';

const entry = (key: string, value: string | undefined, scope = 'global'): ConfigEntry => ({
  scope,
  origin: 'file:/h/.gitconfig',
  key,
  value,
});

describe('effective credential helpers (as git computes them)', () => {
  it('parses git config --null --show-scope --show-origin output, empty values included', () => {
    const out =
      'global\0file:/h/.gitconfig\0credential.https://GitLab.example.com.helper\n\0' +
      'global\0file:/h/.gitconfig\0credential.helper\nstore --file=x\0' +
      'command\0command line:\0credential.https://h.helper\ncache\0';
    assert.deepEqual(parseConfigList(out), [
      {
        scope: 'global',
        origin: 'file:/h/.gitconfig',
        key: 'credential.https://GitLab.example.com.helper',
        value: '',
      },
      { scope: 'global', origin: 'file:/h/.gitconfig', key: 'credential.helper', value: 'store --file=x' },
      { scope: 'command', origin: 'command line:', key: 'credential.https://h.helper', value: 'cache' },
    ]);
  });

  const url = new URL('https://gitlab.example.com/platform/lib.git');
  it('an empty value resets; later entries (any matching section) append', () => {
    const list = effectiveHelpers(
      [
        entry('credential.helper', 'osxkeychain'),
        entry('credential.https://gitlab.example.com.helper', ''),
        entry('credential.https://gitlab.example.com.helper', 'tanuki'),
        entry('credential.https://github.com.helper', 'gh'),
        entry('credential.helper', 'store', 'local'),
      ],
      url,
    );
    assert.deepEqual(
      list.map((h) => h.value),
      ['tanuki', 'store'],
    );
    assert.equal(list[1]?.where, 'local file:/h/.gitconfig');
  });

  for (const [pattern, matches, anyPath] of [
    ['https://gitlab.example.com', true, false],
    ['https://GITLAB.example.com/', true, false],
    ['https://*.example.com', true, false],
    ['https://gitlab.example.com/platform', true, false],
    ['https://gitlab.example.com/platform/lib.git', true, false],
    ['https://gitlab.example.com/other', false, false],
    ['https://gitlab.example.com/other', true, true],
    ['https://gitlab.example.com/plat', false, false],
    ['http://gitlab.example.com', false, false],
    ['https://gitlab.example.com:8443', false, false],
    ['https://user@gitlab.example.com', false, false],
    ['https://example.com', false, false],
    ['gitlab.example.com', true, false],
    ['gitlab.example.com/platform', true, false],
    ['other.example.com', false, false],
  ] as const) {
    it(`credential.${pattern}.* ${matches ? 'applies' : 'does not apply'}${anyPath ? ' (any path)' : ''}`, () =>
      assert.equal(credentialUrlMatches(pattern, url, anyPath), matches));
  }

  it('recognises its own helper, as installed or by hand', () => {
    const installed = `!'/usr/bin/node' '/opt/tanuki/bin/tanuki-sts.js' git-credential --sts 'https://s'`;
    assert.equal(isOurHelper(installed, installed, '/nowhere'), true);
    assert.equal(isOurHelper('!tanuki-sts git-credential', undefined, '/nowhere'), true);
    assert.equal(isOurHelper("!'node' '/x/entry.ts' git-credential", undefined, '/x/entry.ts'), true);
    for (const other of ['store', 'cache --timeout=900', 'manager', '!f() { echo password=x; }; f'])
      assert.equal(isOurHelper(other, installed, '/nowhere'), false, other);
  });
});
