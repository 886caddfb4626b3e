// The vocabulary as xgrammar's TokenizerInfo wants it: token strings by id in their *encoded* form (as in
// tokenizer.json), plus how to decode them — byte_level (GPT-2/Qwen/Llama 3: "Ġ" = space, bytes mapped to
// printable chars), byte_fallback (SentencePiece BPE such as stories260k/Llama 2: "▁" = space, "<0x0A>" =
// one byte) or raw — and whether the tokenizer prepends a space to the text (SentencePiece dummy prefix).
export type VocabType = 'byte_level' | 'byte_fallback' | 'raw';

export interface GrammarVocab {
  encodedVocab: string[]; // [vocabulary size] token id -> encoded string ('' for holes)
  vocabType: VocabType;
  prependSpace: boolean;
}

type Json = Record<string, unknown>;

/** Reads tokenizer.json's model.vocab, added_tokens, decoder and normalizer/pre_tokenizer. */
export function grammarVocabFromTokenizerJson(tj: Json): GrammarVocab {
  const model = (tj.model ?? {}) as Json;
  const encodedVocab: string[] = [];
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...]
    vocab.forEach((e, i) => (encodedVocab[i] = Array.isArray(e) ? String(e[0]) : String(e)));
  } else if (vocab && typeof vocab === 'object') {
    for (const [tok, id] of Object.entries(vocab as Record<string, number>)) if (Number.isInteger(id) && id >= 0) encodedVocab[id] = tok;
  }
  for (const a of (tj.added_tokens ?? []) as Array<{ id?: unknown; content?: unknown }>) {
    if (Number.isInteger(a.id) && typeof a.content === 'string') encodedVocab[a.id as number] = a.content;
  }
  for (let i = 0; i < encodedVocab.length; i++) encodedVocab[i] ??= '';
  return { encodedVocab, vocabType: vocabTypeOf(tj), prependSpace: prependsSpace(tj) };
}

function parts(node: unknown, listKey: string): Json[] {
  if (!node || typeof node !== 'object') return [];
  const n = node as Json;
  if (n.type === 'Sequence' && Array.isArray(n[listKey])) return (n[listKey] as unknown[]).flatMap((c) => parts(c, listKey));
  return [n];
}

function vocabTypeOf(tj: Json): VocabType {
  const decoders = parts(tj.decoder, 'decoders');
  if (decoders.some((d) => d.type === 'ByteLevel')) return 'byte_level';
  if (decoders.some((d) => d.type === 'ByteFallback') || (tj.model as Json | undefined)?.byte_fallback === true) return 'byte_fallback';
  return 'raw';
}

function prependsSpace(tj: Json): boolean {
  if (parts(tj.normalizer, 'normalizers').some((n) => n.type === 'Prepend' && n.prepend === '▁')) return true;
  return parts(tj.pre_tokenizer, 'pretokenizers').some(
    (p) => p.type === 'Metaspace' && (p.prepend_scheme === 'always' || p.prepend_scheme === 'first' || (p.prepend_scheme === undefined && p.add_prefix_space === true)),
  );
}
