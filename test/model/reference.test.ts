// The float64 reference forward pass reproduces llama2.c's documented greedy output for stories260K, so it can
// stand as the reference for the GPU engine.
import { describe, expect, it } from 'vitest';
import { argmax, ReferenceModel } from '../reference/forward.ts';
import { loadLlama2cForReference } from '../reference/llama2c.ts';
import { haveSharedModel, sharedModel, STORIES260K_GREEDY_IDS } from '../helpers/models.ts';

describe.skipIf(!haveSharedModel('stories260K/stories260K.bin'))('float64 reference forward pass', () => {
  it('reproduces llama2.c greedy ids for stories260K from BOS', () => {
    const { config, weights } = loadLlama2cForReference(sharedModel('stories260K/stories260K.bin'));
    const model = new ReferenceModel(config, weights, 64);
    let token = config.bosId;
    const ids: number[] = [];
    for (let pos = 0; pos < STORIES260K_GREEDY_IDS.length; pos++) {
      token = argmax(model.forward(token, pos));
      ids.push(token);
    }
    expect(ids).toEqual(STORIES260K_GREEDY_IDS);
  });
});
