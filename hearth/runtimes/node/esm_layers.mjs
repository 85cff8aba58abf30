// ES module imports from layers, for Hearth's Node.js runtime (registered by bootstrap.js).
//
// Lambda's Node.js 18+ runtimes let an ES module handler `import` packages that layers
// ship under /opt/nodejs/nodeNN/node_modules or /opt/nodejs/node_modules. Node's ES module
// resolver does not read NODE_PATH, so this resolve hook retries a bare specifier that
// the normal resolution (the function's own node_modules first) did not find, as if it
// were imported from /opt/nodejs/nodeNN/: Node then searches
// /opt/nodejs/nodeNN/node_modules and /opt/nodejs/node_modules, in that order.
import { pathToFileURL } from 'node:url';

const MAJOR = process.versions.node.split('.')[0];
const LAYER_PARENT = pathToFileURL(`/opt/nodejs/node${MAJOR}/index.mjs`).href;

function isBare(specifier) {
  return !(
    specifier.startsWith('.') ||
    specifier.startsWith('/') ||
    specifier.startsWith('#') ||
    /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(specifier)
  );
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (!err || err.code !== 'ERR_MODULE_NOT_FOUND' || !isBare(specifier)) throw err;
    try {
      return await nextResolve(specifier, { ...context, parentURL: LAYER_PARENT });
    } catch (_e) {
      throw err;
    }
  }
}
