// console.* for Hearth's Node.js runtime (loaded by bootstrap.js).
//
// Text format (the default): "<ISO time>\t<request id>\t<LEVEL>\t<message>" lines with inner
// newlines turned into '\r', so one call stays one log event (as Lambda's runtime does).
//
// With a framed log channel (its fd in _LAMBDA_TELEMETRY_LOG_FD, taken out of the
// environment), each call is written to it as one frame instead, newlines kept, as the
// Node.js runtime interface client does: a 16-byte header (type 0xa55a0003 for text, JSON
// 0xa55a0002 | level << 2; length; timestamp in microseconds; big-endian) and the message,
// ending with '\n' (the client ends only text lines so; a JSON record too here, so that
// LogResult's tail stays one record per line, as before). See hearth/observe/frames.py.
'use strict';

const fs = require('fs');
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

// The framed log channel's fd, or -1 (set by patchConsole, at the runtime's start).
let telemetryFd = -1;

function openTelemetry() {
  const raw = process.env._LAMBDA_TELEMETRY_LOG_FD;
  delete process.env._LAMBDA_TELEMETRY_LOG_FD;
  if (!raw || !/^[0-9]+$/.test(raw)) return -1;
  try {
    fs.fstatSync(Number(raw));
    return Number(raw);
  } catch (_e) {
    return -1;
  }
}

function writeFrame(level, now, message) {
  const body = Buffer.from(message, 'utf8');
  const frame = Buffer.alloc(16 + body.length);
  const type = JSON_LOGS ? (0xa55a0002 | (LEVELS[level] << 2)) >>> 0 : 0xa55a0003;
  frame.writeUInt32BE(type, 0);
  frame.writeUInt32BE(body.length, 4);
  frame.writeBigUInt64BE(BigInt(now.valueOf()) * 1000n, 8);
  body.copy(frame, 16);
  for (let off = 0; off < frame.length;) off += fs.writeSync(telemetryFd, frame, off);
}

function patchConsole() {
  telemetryFd = openTelemetry();
  const min = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || LEVELS.TRACE;
  const write = (level, always) => {
    if (!always && LEVELS[level] < min) return () => {};
    return (...args) => {
      const now = new Date();
      const time = now.toISOString();
      const line = JSON_LOGS
        ? jsonLine(time, level, currentRequestId, args)
        : `${time}\t${currentRequestId === undefined ? 'undefined' : currentRequestId}\t${level}\t${util.format(...args)}`;
      if (telemetryFd >= 0) writeFrame(level, now, `${line}\n`);
      else process.stdout.write(`${line.replace(/\n/g, '\r')}\n`);
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
