// console.* for Hearth's Node.js runtime (loaded by bootstrap.js).
//
// Text format (the default): "<ISO time>\t<request id>\t<LEVEL>\t<message>" lines with inner
// newlines turned into '\r', so one call stays one log event (as Lambda's runtime does).
'use strict';

const util = require('util');

// LoggingConfig reaches the runtime as AWS_LAMBDA_LOG_FORMAT / AWS_LAMBDA_LOG_LEVEL; as
// Lambda's runtime (LogPatch): JSON writes {timestamp, level, requestId, message} (an
// Error argument adds errorType, errorMessage, stackTrace), and calls below the level are
// dropped (console.fatal always writes).
const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
const JSON_LOGS = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';

function jsonErrorReplacer(_key, value) {
  if (value instanceof Error) {
    return Object.assign({
      errorType: (value.constructor && value.constructor.name) || 'UnknownError',
      errorMessage: value.message,
      stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
    }, value);
  }
  return value;
}

function jsonLine(timestamp, level, requestId, args) {
  const doc = { timestamp, level, requestId };
  if (args.length === 1) {
    doc.message = args[0];
    try {
      return JSON.stringify(doc, jsonErrorReplacer);
    } catch (_e) {
      doc.message = util.format(doc.message);
      return JSON.stringify(doc);
    }
  }
  doc.message = util.format(...args);
  const err = args.find((a) => a instanceof Error);
  if (err) {
    doc.errorType = (err.constructor && err.constructor.name) || 'UnknownError';
    doc.errorMessage = err.message;
    doc.stackTrace = typeof err.stack === 'string' ? err.stack.split('\n') : [];
  }
  return JSON.stringify(doc);
}

let currentRequestId;
function setRequestId(rid) {
  currentRequestId = rid;
}

function patchConsole() {
  const min = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || LEVELS.TRACE;
  const write = (level, always) => {
    if (!always && LEVELS[level] < min) return () => {};
    return (...args) => {
      const time = new Date().toISOString();
      const line = JSON_LOGS
        ? jsonLine(time, level, currentRequestId, args)
        : `${time}\t${currentRequestId === undefined ? 'undefined' : currentRequestId}\t${level}\t${util.format(...args)}`;
      process.stdout.write(`${line.replace(/\n/g, '\r')}\n`);
    };
  };
  console.log = write('INFO');
  console.info = write('INFO');
  console.warn = write('WARN');
  console.error = write('ERROR');
  console.debug = write('DEBUG');
  console.fatal = write('FATAL', true);
  const trace = write('TRACE');
  console.trace = (...args) => {
    const e = new Error(util.format(...args));
    e.name = 'Trace';
    trace(e.stack);
  };
}

// An error the runtime reports itself ("Invoke Error", "Uncaught Exception"): in text,
// the label, a tab and the error as Lambda's runtime formats it (errorType, errorMessage,
// its own enumerable fields, stack as lines); in JSON, the error as the record's message.
function enumerableError(_key, v) {
  if (!(v instanceof Error)) return v;
  const out = Object.assign({ errorType: v.name, errorMessage: v.message, code: v.code }, v);
  if (typeof v.stack === 'string') out.stack = v.stack.split('\n');
  return out;
}

function logError(label, err) {
  const e = err instanceof Error ? err : new Error(err);
  if (JSON_LOGS) {
    console.error(e);
    return;
  }
  let text;
  try {
    text = JSON.stringify(e, enumerableError);
  } catch (_e) {
    text = JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: String(e.stack || '').split('\n') });
  }
  console.error(label, `\t${text}`);
}

module.exports = { patchConsole, logError, setRequestId };
