// The page's model lives here, in a module Web Worker: tokenizer training, every training step,
// evaluation and probes run off the page's thread, so the page stays responsive while it trains.
// The page (app.js) sends `{id, method, args}` and gets `{id, ok, value}` or `{id, ok: false, error}`;
// `create` and `open` replace the session, every other method is the `Session`'s own (web/src/).
import init, { Session, families } from './pkg/hearth_web.js';

const loaded = init();
let session = null;

function replace(next) {
  session?.free();
  session = next;
  return null;
}

const OWN = {
  create: async (...args) => replace(await Session.create(...args)),
  open: async (...args) => replace(await Session.open(...args)),
  free: () => replace(null),
  families: () => families(), // core's registry: each family's model_type and objectives
  ready: () => null, // answered once the module is loaded
};

self.onmessage = async ({ data: { id, method, args } }) => {
  try {
    await loaded;
    let value;
    if (OWN[method]) {
      value = await OWN[method](...args);
    } else if (!session) {
      throw new Error('no model yet: train or open one first');
    } else {
      value = await session[method](...args);
    }
    self.postMessage({ id, ok: true, value });
  } catch (e) {
    self.postMessage({ id, ok: false, error: String(e?.message ?? e) });
  }
};
