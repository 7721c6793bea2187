// Drives the Vercel AI SDK (`ai` with `@ai-sdk/anthropic` and `@ai-sdk/openai`) against a gateway, as an
// application would: generateText and streamText, without and with a tool whose loop sends the result back.
//
//   node tests/clients/ai_sdk_client.mjs --base-url http://127.0.0.1:8000/v1 --api-key sk-... --mode all
//
// Modes: <provider>-<call>[-tool], provider anthropic | chat | responses, call generate | stream; `all` runs
// every one. Each result is printed on stdout as one JSON line; an error prints {"mode", "error"} and the
// process exits 1 after the other modes have run. Base URL, key and model may also come from
// AI_SDK_BASE_URL, AI_SDK_API_KEY and AI_SDK_MODEL. --system, --temperature, --max-output-tokens and
// --provider-options (JSON) add the call settings an application commonly sets.
import { parseArgs } from "node:util";

import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const PROVIDERS = ["anthropic", "chat", "responses"];
const CALLS = ["generate", "stream"];
const ALL_MODES = PROVIDERS.flatMap((p) => CALLS.flatMap((c) => [`${p}-${c}`, `${p}-${c}-tool`]));

const { values } = parseArgs({
  options: {
    "base-url": { type: "string", default: process.env.AI_SDK_BASE_URL },
    "api-key": { type: "string", default: process.env.AI_SDK_API_KEY ?? "sk-test" },
    model: { type: "string", default: process.env.AI_SDK_MODEL ?? "claude-sonnet-4-5" },
    mode: { type: "string", default: "all" },
    prompt: { type: "string", default: "Say hello." },
    "tool-prompt": { type: "string", default: "What is the weather in Paris? Use the tool." },
    "max-steps": { type: "string", default: "3" },
    system: { type: "string" },
    temperature: { type: "string" },
    "max-output-tokens": { type: "string" },
    // Passed to the call as `providerOptions`, e.g. '{"anthropic": {"thinking": {"type": "adaptive"}}}'.
    "provider-options": { type: "string" },
  },
});
if (!values["base-url"]) {
  console.error("--base-url (or AI_SDK_BASE_URL) is required, e.g. http://127.0.0.1:8000/v1");
  process.exit(2);
}

function model(provider) {
  const settings = { baseURL: values["base-url"], apiKey: values["api-key"] };
  if (provider === "anthropic") return createAnthropic(settings)(values.model);
  const openai = createOpenAI(settings);
  return provider === "chat" ? openai.chat(values.model) : openai.responses(values.model);
}

const tools = {
  get_weather: tool({
    description: "The current weather in a city.",
    inputSchema: z.object({ city: z.string().describe("The city name") }),
    execute: async ({ city }) => ({ city, temperatureC: 21, sky: "clear" }),
  }),
};

function summary(mode, result, steps) {
  return {
    mode,
    text: result.text,
    finishReason: result.finishReason,
    steps: steps.length,
    toolCalls: steps.flatMap((s) => s.toolCalls.map((c) => ({ name: c.toolName, input: c.input }))),
    toolResults: steps.flatMap((s) => s.toolResults.map((r) => ({ name: r.toolName, output: r.output }))),
    usage: result.usage,
  };
}

async function run(mode) {
  const [provider, call, withTool] = mode.split("-");
  const options = {
    model: model(provider),
    prompt: withTool ? values["tool-prompt"] : values.prompt,
    maxRetries: 0,
    ...(values.system ? { system: values.system } : {}),
    ...(values.temperature ? { temperature: Number(values.temperature) } : {}),
    ...(values["max-output-tokens"] ? { maxOutputTokens: Number(values["max-output-tokens"]) } : {}),
    ...(values["provider-options"] ? { providerOptions: JSON.parse(values["provider-options"]) } : {}),
    ...(withTool ? { tools, stopWhen: stepCountIs(Number(values["max-steps"])) } : {}),
  };
  if (call === "generate") {
    const result = await generateText(options);
    return summary(mode, result, result.steps);
  }
  let streamError;
  const result = streamText({ ...options, onError: ({ error }) => (streamError = error) });
  let streamed = "";
  for await (const delta of result.textStream) streamed += delta;
  if (streamError) throw streamError;
  const steps = await result.steps;
  const finished = { text: await result.text, finishReason: await result.finishReason, usage: await result.usage };
  return { ...summary(mode, finished, steps), streamed };
}

const modes = values.mode === "all" ? ALL_MODES : values.mode.split(",");
let failed = false;
for (const mode of modes) {
  if (!ALL_MODES.includes(mode)) {
    console.error(`unknown mode ${mode}; known: all, ${ALL_MODES.join(", ")}`);
    process.exit(2);
  }
  try {
    console.log(JSON.stringify(await run(mode)));
  } catch (error) {
    failed = true;
    const detail = { message: String(error?.message ?? error), status: error?.statusCode, body: error?.responseBody };
    console.log(JSON.stringify({ mode, error: detail }));
  }
}
process.exit(failed ? 1 : 0);
