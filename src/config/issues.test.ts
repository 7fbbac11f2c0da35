import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { didYouMean, editDistance, joinOr } from './issues.ts';

describe('config issues: the words they use', () => {
  it('edit distance counts insertions, deletions, substitutions and adjacent swaps, ignoring case', () => {
    assert.equal(editDistance('tennant', 'tenant'), 1);
    assert.equal(editDistance('evn', 'env'), 1);
    assert.equal(editDistance('jwksuri', 'jwksUri'), 0);
    assert.equal(editDistance('audience', 'audiences'), 1);
    assert.equal(editDistance('', 'abc'), 3);
  });

  it('suggests a known word only when it is close enough to be a typo', () => {
    const keys = ['tenant', 'authorityHost', 'allowDelegated'];
    assert.equal(didYouMean('tennant', keys), 'tenant');
    assert.equal(didYouMean('authorityhost', keys), 'authorityHost');
    assert.equal(didYouMean('allowdelgated', keys), 'allowDelegated');
    assert.equal(didYouMean('issuer', keys), undefined);
    assert.equal(didYouMean('xy', ['ab']), undefined);
    assert.equal(didYouMean('x'.repeat(65), ['x'.repeat(64)]), undefined);
  });

  it('joins alternatives with commas and a final "or"', () => {
    assert.equal(joinOr([]), '');
    assert.equal(joinOr(['a']), 'a');
    assert.equal(joinOr(['a', 'b']), 'a or b');
    assert.equal(joinOr(['a', 'b', 'c']), 'a, b or c');
  });
});
