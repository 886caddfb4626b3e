import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ChatTemplate } from './chat-template.js';

const chatml = "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const ctx = { specialTokens: {} };

test('continue_final_message: the prompt ends inside the final message (its end of turn removed)', () => {
  const t = new ChatTemplate(chatml);
  const messages = [{ role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'The colour is' }];
  assert.equal(t.render(messages, { addGenerationPrompt: false }, ctx),
    '<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\nThe colour is<|im_end|>\n');
  assert.equal(t.render(messages, { addGenerationPrompt: false, continueFinalMessage: true }, ctx),
    '<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\nThe colour is');
  // trailing whitespace the template strips is matched in its trimmed form
  const trimming = new ChatTemplate("{% for m in messages %}[{{ m.content | trim }}]{% endfor %}");
  assert.equal(trimming.render([{ role: 'assistant', content: 'go on ' }], { continueFinalMessage: true }, ctx), '[go on');
  assert.throws(() => new ChatTemplate('fixed').render(messages, { continueFinalMessage: true }, ctx), /final message content was not found/);
});
