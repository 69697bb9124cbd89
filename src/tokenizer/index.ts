/** The tokenizer's browser-safe API (Node file loading is in node.ts). */
export { Tokenizer, type TokenDecoder } from './tokenizer.ts';
export { decodeModelProto, encodeModelProto, readModelProto, type ModelProtoInfo } from './proto.ts';
export { PieceType, SPACE_SYMBOL, bytePieceValue, countLlama2cTokens, vocabFromGguf, vocabFromLlama2cTokenizer, type Vocab } from './vocab.ts';
