// Messages between the event loop and a tokenizer worker (tokenize-worker.ts). One job at a time per worker.
import type { ChatMessage, ChatTemplateOptions } from './types.js';
import type { LoadTokenizerOptions } from './load.js';

export interface WorkerInit {
  load: LoadTokenizerOptions;
}

export type EncodeJob =
  | { id: number; kind: 'encode'; texts: string[]; addSpecialTokens: boolean }
  | { id: number; kind: 'chat'; messages: ChatMessage[]; opts: ChatTemplateOptions; addSpecialTokens: boolean };

/** tokenIds: one Int32Array per text (transferred); chat: one, plus the rendered text. */
export type EncodeResult =
  | { id: number; ok: true; tokenIds: Int32Array[]; text?: string }
  | { id: number; ok: false; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  param?: string | null;
}

export type WorkerReady = { ready: true } | { ready: false; error: SerializedError };
