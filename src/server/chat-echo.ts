// Chat `echo` (vLLM): when the last message is the assistant's (a prefix to continue), its content is
// echoed before the generated text of every choice; otherwise nothing is echoed.
import type { WireChatMessage } from './request-schemas.js';

export function chatEchoText(messages: readonly WireChatMessage[]): string {
  const last = messages[messages.length - 1];
  if (!last || last.role !== 'assistant') return '';
  if (typeof last.content === 'string') return last.content;
  if (Array.isArray(last.content)) return last.content.map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('');
  return '';
}
