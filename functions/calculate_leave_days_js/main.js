// calculate_leave_days in JavaScript: working days between two ISO dates,
// inclusive, without weekends and holidays.
//
// A port of functions/calculate_leave_days/src/lib.rs that behaves the same
// way: the same input fields, the same checks in the same order, the same
// error messages and the same output bytes. Proleptic Gregorian calendar,
// years 0001 to 9999. Dates are day numbers (days since 1970-01-01) and the
// calendar is integer arithmetic; no Date object is used, so no time zone
// can change a result.

// The fields and weekdays as the Rust types declare them, in that order.
const FIELDS = ["start_date", "end_date", "holidays", "weekend"];
const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const DEFAULT_WEEKEND = ["saturday", "sunday"];

// The bounds on the input arrays, as in the Rust function and schema.json.
const MAX_HOLIDAYS = 1000;
const MAX_WEEKEND = 7;
// The request has four fields; anything past them is refused at the first
// unknown one, so no more keys than this are ever looked at.
const MAX_KEYS = FIELDS.length + 1;

export function main(input, context) {
  const request = decodeRequest(input);
  return calculate(request);
}

// ---------------------------------------------------------------------------
// The calculation (Rust: calculate).

function calculate(request) {
  const start = dateField("start_date", request.start_date);
  const end = dateField("end_date", request.end_date);
  if (end < start) {
    throw invalidInput("end_date", `${request.end_date} is before start_date ${request.start_date}`);
  }

  const weekend = request.weekend;
  const off = [false, false, false, false, false, false, false];
  for (const day of weekend) {
    off[WEEKDAYS.indexOf(day)] = true;
  }

  // Whole weeks, then the rest (at most 6 days): constant time for any range.
  const calendarDays = end - start + 1;
  const perWeek = off.filter((isOff) => !isOff).length;
  const weeks = Math.trunc(calendarDays / 7);
  const rest = calendarDays % 7;
  const first = weekday(start);
  let restWorking = 0;
  for (let i = 0; i < rest; i++) {
    if (!off[(first + i) % 7]) {
      restWorking += 1;
    }
  }
  const weekdays = weeks * perWeek + restWorking;

  // Holidays on a working day in the range, sorted, each day once.
  const holidays = request.holidays;
  const excluded = [];
  for (let i = 0; i < holidays.length; i++) {
    const day = dateField(`holidays[${i}]`, holidays[i]);
    if (day >= start && day <= end && !off[weekday(day)]) {
      excluded.push({ day, text: holidays[i] });
    }
  }
  // A valid date has exactly one spelling, so sorting by day is sorting by
  // (day, text) as Rust does.
  excluded.sort((a, b) => a.day - b.day);
  const holidaysExcluded = [];
  for (let i = 0; i < excluded.length; i++) {
    if (i === 0 || excluded[i].day !== excluded[i - 1].day) {
      holidaysExcluded.push(excluded[i].text);
    }
  }

  // Keys in the order of the Rust struct's fields, as serde writes them.
  const out = {
    working_days: weekdays - holidaysExcluded.length,
    calendar_days: calendarDays,
    weekend_days: calendarDays - weekdays,
    holidays_excluded: holidaysExcluded,
  };
  console.debug(
    `${request.start_date} to ${request.end_date}: ${out.working_days} working days of ${out.calendar_days}`
  );
  return out;
}

// ---------------------------------------------------------------------------
// The calendar (Rust: is_leap, days_in_month, days_from_civil, weekday,
// parse_date). Every division is Rust's integer division, Math.trunc.

function isLeap(y) {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y, m) {
  if (m === 2) {
    return isLeap(y) ? 29 : 28;
  }
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
function daysFromCivil(y, m, d) {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.trunc((yy >= 0 ? yy : yy - 399) / 400);
  const yoe = yy - era * 400;
  const mp = (m + 9) % 12;
  const doy = Math.trunc((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.trunc(yoe / 4) - Math.trunc(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

// Monday = 0 ... Sunday = 6. 1970-01-01 was a Thursday.
function weekday(day) {
  return (((day + 3) % 7) + 7) % 7;
}

// Rust's shape check: exactly ten bytes, ASCII digits with '-' at 4 and 7.
const DATE_SHAPE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;

// A strict YYYY-MM-DD date as a day number; a bad one is an error naming
// the field.
function dateField(name, s) {
  if (!DATE_SHAPE.test(s)) {
    throw invalidInput(name, `expected a date as YYYY-MM-DD, got ${rustDebug(s)}`);
  }
  const y = Number(s.slice(0, 4));
  const m = Number(s.slice(5, 7));
  const d = Number(s.slice(8, 10));
  if (y === 0) {
    throw invalidInput(name, `year 0000 is out of range in ${rustDebug(s)} (0001 to 9999)`);
  }
  if (m < 1 || m > 12) {
    throw invalidInput(name, `month ${m} is out of range in ${rustDebug(s)}`);
  }
  const dim = daysInMonth(y, m);
  if (d < 1 || d > dim) {
    const month = String(m).padStart(2, "0");
    throw invalidInput(name, `day ${d} is out of range in ${rustDebug(s)} (${y}-${month} has ${dim} days)`);
  }
  return daysFromCivil(y, m, d);
}

// ---------------------------------------------------------------------------
// Reading the input, worded like the Rust SDK (serde_json with the path of
// the field at fault). The host checks the input against schema.json before
// a call, so behind the service only the date errors above are reachable;
// `aifn run` does not check the schema, and then these messages match the
// Rust function's too.

// Rust: #[derive(Deserialize)] #[serde(deny_unknown_fields)] LeaveRequest.
function decodeRequest(input) {
  if (Array.isArray(input)) {
    return decodeSequence(input);
  }
  if (input === null || typeof input !== "object") {
    throw sdkError(null, `invalid type: ${unexpected(input)}, expected struct LeaveRequest`);
  }
  const keys = Object.keys(input).slice(0, MAX_KEYS);
  const request = { start_date: null, end_date: null, holidays: [], weekend: DEFAULT_WEEKEND };
  // Fields in the order they come, as serde reads them: the first problem wins.
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k];
    const value = input[key];
    if (key === "start_date") {
      request.start_date = decodeString(value, key);
    } else if (key === "end_date") {
      request.end_date = decodeString(value, key);
    } else if (key === "holidays") {
      request.holidays = decodeHolidays(value, key);
    } else if (key === "weekend") {
      request.weekend = decodeWeekend(value, key, () => memberOffset(input, keys, k));
    } else {
      throw sdkError(key, `unknown field \`${key}\`, expected one of ${FIELDS.map((f) => `\`${f}\``).join(", ")}`);
    }
  }
  if (typeof request.start_date !== "string") {
    throw sdkError(null, "missing field `start_date`");
  }
  if (typeof request.end_date !== "string") {
    throw sdkError(null, "missing field `end_date`");
  }
  return request;
}

// serde also accepts a struct as an array of its fields in order.
function decodeSequence(items) {
  const expecting = "struct LeaveRequest with 4 elements";
  if (items.length < 1) {
    throw sdkError(null, `invalid length 0, expected ${expecting}`);
  }
  const startDate = decodeString(items[0], "[0]");
  if (items.length < 2) {
    throw sdkError(null, `invalid length 1, expected ${expecting}`);
  }
  const endDate = decodeString(items[1], "[1]");
  const holidays = items.length > 2 ? decodeHolidays(items[2], "[2]") : [];
  const weekend =
    items.length > 3 ? decodeWeekend(items[3], "[3]", () => elementOffset(items, 3)) : DEFAULT_WEEKEND;
  if (items.length > 4) {
    throw syntaxError("trailing characters", elementOffset(items, 4) + 1);
  }
  return { start_date: startDate, end_date: endDate, holidays, weekend };
}

function decodeString(value, path) {
  if (typeof value !== "string") {
    throw sdkError(path, `invalid type: ${unexpected(value)}, expected a string`);
  }
  return value;
}

function decodeHolidays(value, path) {
  if (!Array.isArray(value)) {
    throw sdkError(path, `invalid type: ${unexpected(value)}, expected a sequence`);
  }
  if (value.length > MAX_HOLIDAYS) {
    throw sdkError(path, `at most ${MAX_HOLIDAYS} holidays, got ${value.length}`);
  }
  for (let i = 0; i < value.length; i++) {
    decodeString(value[i], `${path}[${i}]`);
  }
  return value;
}

// `valueOffset` gives where the array starts in the input's JSON text, for
// the one error serde_json reports by position.
function decodeWeekend(value, path, valueOffset) {
  if (!Array.isArray(value)) {
    throw sdkError(path, `invalid type: ${unexpected(value)}, expected a sequence`);
  }
  if (value.length > MAX_WEEKEND) {
    throw sdkError(path, `at most ${MAX_WEEKEND} days, got ${value.length}`);
  }
  const days = [];
  for (let i = 0; i < value.length; i++) {
    days.push(decodeWeekday(value[i], `${path}[${i}]`, () => valueOffset() + elementOffset(value, i)));
  }
  return days;
}

// Rust: #[serde(rename_all = "lowercase")] enum Weekday. A unit variant is
// a string, or (as serde_json also reads it) an object {"monday": null}.
function decodeWeekday(value, path, valueOffset) {
  if (typeof value === "string") {
    if (WEEKDAYS.includes(value)) {
      return value;
    }
    throw sdkError(path, unknownVariant(value));
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw syntaxError("expected value", valueOffset() + 1);
  }
  const keys = Object.keys(value);
  if (keys.length === 0) {
    throw syntaxError("expected value", valueOffset() + 2);
  }
  const variant = keys[0];
  if (!WEEKDAYS.includes(variant)) {
    throw sdkError(path, unknownVariant(variant));
  }
  if (value[variant] !== null) {
    throw sdkError(`${path}.${variant}`, `invalid type: ${unexpected(value[variant])}, expected unit`);
  }
  if (keys.length > 1) {
    throw syntaxError("expected value", valueOffset() + 1 + utf8Length(JSON.stringify(variant)) + 1 + 4);
  }
  return variant;
}

function unknownVariant(name) {
  return `unknown variant \`${name}\`, expected one of ${WEEKDAYS.map((w) => `\`${w}\``).join(", ")}`;
}

// ---------------------------------------------------------------------------
// Error messages.

// Rust: FunctionError::invalid_input(field, problem).
function invalidInput(field, problem) {
  return new Error(`invalid input at .${field}: ${problem}`);
}

// The SDK's message for a data error: at the field's path, or at the root.
function sdkError(path, message) {
  return new Error(path === null ? `invalid input: ${message}` : `invalid input at .${path}: ${message}`);
}

// serde_json's syntax errors carry a position instead of a path. The input
// arrives parsed, so the column is counted in the compact JSON form of the
// input (what `JSON.stringify` writes); it matches for input sent on one
// line without spaces.
function syntaxError(message, column) {
  return new Error(`invalid input: ${message} at line 1 column ${column}`);
}

// serde's description of an unexpected JSON value.
function unexpected(value) {
  if (value === null) {
    return "null";
  }
  if (typeof value === "boolean") {
    return `boolean \`${value}\``;
  }
  if (typeof value === "number") {
    // serde_json reads integers as u64 or i64 and anything else as f64.
    const integer =
      Number.isInteger(value) && !Object.is(value, -0) && value >= -9223372036854775808 && value < 18446744073709551616;
    return integer ? `integer \`${BigInt(value)}\`` : `floating point \`${ryu(value)}\``;
  }
  if (typeof value === "string") {
    return `string ${rustDebug(value)}`;
  }
  return Array.isArray(value) ? "sequence" : "map";
}

// A float as the ryu crate writes it: the shortest digits that read back
// (the same digits toExponential gives), e.g. 1.0, 0.00001, 1e-7, 1.5e300.
function ryu(x) {
  if (x === 0) {
    return Object.is(x, -0) ? "-0.0" : "0.0";
  }
  const sign = x < 0 ? "-" : "";
  const parts = Math.abs(x).toExponential().split("e");
  const digits = parts[0].replace(".", "");
  const length = digits.length;
  const kk = Number(parts[1]) + 1; // 10^(kk-1) <= |x| < 10^kk
  const k = kk - length;
  if (k >= 0 && kk <= 16) {
    return `${sign}${digits}${"0".repeat(k)}.0`;
  }
  if (kk > 0 && kk <= 16) {
    return `${sign}${digits.slice(0, kk)}.${digits.slice(kk)}`;
  }
  if (kk > -5 && kk <= 0) {
    return `${sign}0.${"0".repeat(-kk)}${digits}`;
  }
  if (length === 1) {
    return `${sign}${digits}e${kk - 1}`;
  }
  return `${sign}${digits[0]}.${digits.slice(1)}e${kk - 1}`;
}

// A string as Rust's {:?} writes it: quoted, with \" \\ \n \r \t \0, and
// \u{...} for combining marks and characters that do not print.
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;
const GRAPHEME_EXTEND = /\p{Grapheme_Extend}/u;
const NAMED_ESCAPES = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0" };

function rustDebug(s) {
  let out = '"';
  for (const ch of s) {
    if (Object.hasOwn(NAMED_ESCAPES, ch)) {
      out += NAMED_ESCAPES[ch];
    } else if (ch !== " " && (GRAPHEME_EXTEND.test(ch) || NOT_PRINTABLE.test(ch))) {
      out += `\\u{${ch.codePointAt(0).toString(16)}}`;
    } else {
      out += ch;
    }
  }
  return `${out}"`;
}

// Where things start in the compact JSON text, in bytes from the start of
// their container: element `index` of an array, or the value of member
// `keys[index]` of an object.
function elementOffset(array, index) {
  let offset = 1;
  for (let j = 0; j < index && j < array.length; j++) {
    offset += utf8Length(JSON.stringify(array[j])) + 1;
  }
  return offset;
}

function memberOffset(object, keys, index) {
  let offset = 1;
  for (let j = 0; j < index && j < keys.length; j++) {
    offset += utf8Length(JSON.stringify(keys[j])) + 1 + utf8Length(JSON.stringify(object[keys[j]])) + 1;
  }
  return offset + utf8Length(JSON.stringify(keys[index])) + 1;
}

function utf8Length(s) {
  let bytes = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0);
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return bytes;
}
