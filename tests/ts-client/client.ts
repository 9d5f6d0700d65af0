/**
 * GroupMgr API from TypeScript: the example the UI team starts from.
 *
 * Every request and answer below is typed by `generated/schema.d.ts`, which openapi-typescript
 * writes from the API's own description (`GET /api/openapi.json`, generated from the Rust
 * model), and sent with openapi-fetch. So a route, parameter or property renamed on the Rust
 * side makes `tsc` fail on this file before anything runs. At run time each step checks the
 * status and the shape of what came back and prints one line; the first surprise stops the
 * program with a message and exit status 1. `scripts/ts-client.sh` does it all against
 * `groupmgr dev` (the app and m365-sim): lint the description, generate the types, type-check
 * this file (strict) and run it. By hand, against an app that is running:
 *
 *   openapi-typescript http://…/api/openapi.json -o generated/schema.d.ts   (with the token)
 *   BASE_URL=http://127.0.0.1:7071 TOKEN=<bearer token> tsx client.ts
 *
 * The steps: page through the groups, read one, create one, add and remove a member, read and
 * set (then restore) the group creation policy, read the inactive groups, set the lifecycle
 * policy, read its dry run, the reviews and the due actions, register and remove a webhook,
 * read one group's activity, start a sync, read
 * where the sync stands, and see a create refused with `invalid_input`; the group it created
 * is deleted at the end.
 */
import createClient from "openapi-fetch";
import type { paths } from "./generated/schema";

/** The JSON body that `method` on `path` answers with `status`, as the description says. The
 * types below are named by route rather than by schema name, which follows the Rust type names;
 * a property renamed, added or removed still changes them. */
type Answer<Path extends keyof paths, Method extends keyof paths[Path], Status extends number> =
  paths[Path][Method] extends { responses: { [S in Status]: { content: { "application/json": infer Body } } } }
    ? Body
    : never;

type GroupPage = Answer<"/api/groups", "get", 200>;
type Group = Answer<"/api/groups/{id}", "get", 200>;
type SensitivityLabel = NonNullable<Group["sensitivityLabels"]>[number];
type PrincipalPage = Answer<"/api/groups/{id}/members", "get", 200>;
type Principal = PrincipalPage["value"][number];
type Policy = Answer<"/api/policy/group-creation", "get", 200>;
type NamingPreview = Answer<"/api/policy/naming/preview", "get", 200>;
type NamingProblem = NamingPreview["problems"][number];
type ActivityPage = Answer<"/api/activity", "get", 200>;
type ActivityItem = ActivityPage["value"][number];
type SyncQueued = Answer<"/api/sync", "post", 202>;
type SyncState = Answer<"/api/sync", "get", 200>;
type RunRecord = NonNullable<SyncState["lastRun"]>;
type SyncCondition = NonNullable<SyncState["condition"]>;
type SourceState = SyncState["sources"][number];
type LifecyclePolicy = Answer<"/api/lifecycle/policy", "get", 200>;
type CandidatePage = Answer<"/api/lifecycle/candidates", "get", 200>;
type Candidate = CandidatePage["value"][number];
type Withholding = NonNullable<CandidatePage["withheld"]>;
type GroupActivity = Answer<"/api/groups/{id}/activity", "get", 200>;
type SignalDetail = GroupActivity["signals"][number];
type Successors = Answer<"/api/groups/{id}/successors", "get", 200>;
type Successor = Successors["successors"][number];
type ReviewList = Answer<"/api/lifecycle/reviews", "get", 200>;
type Review = ReviewList["value"][number];
type OpenedReviews = Answer<"/api/lifecycle/reviews", "post", 200>;
type DueActionList = Answer<"/api/lifecycle/actions", "get", 200>;
type DueAction = DueActionList["value"][number];
type ConfirmedActions = Answer<"/api/lifecycle/actions", "post", 200>;
type Webhook = Answer<"/api/lifecycle/webhook", "put", 200>;
type ErrorBody = Answer<"/api/groups", "post", 400>;
type ErrorCode = ErrorBody["error"]["code"];

// --- Run-time checks of what the API answered -----------------------------------------------

/** The program's one failure: a step got an answer it did not expect. */
class Unexpected extends Error {}

function fail(step: string, what: string): never {
  throw new Unexpected(`${step}: ${what}`);
}

/** A check for every property of `T`, so that a property added, removed or renamed in the
 * description is a type error here too. */
type Checks<T> = { [K in keyof T]-?: (value: unknown) => boolean };

const isString = (v: unknown): boolean => typeof v === "string";
const isBoolean = (v: unknown): boolean => typeof v === "boolean";
const isCount = (v: unknown): boolean => typeof v === "number" && Number.isInteger(v) && v >= 0;
const isTime = (v: unknown): boolean =>
  typeof v === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v);
const isUuid = (v: unknown): boolean =>
  typeof v === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
/** `null` or what `check` accepts (never left out: the API sends every property). */
const orNull =
  (check: (v: unknown) => boolean) =>
  (v: unknown): boolean =>
    v === null || check(v);
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks `value` property by property; returns it, or fails naming the first bad property. */
function conforms<T>(step: string, what: string, value: T, checks: Checks<T>): T {
  if (!isObject(value)) fail(step, `${what} is not an object: ${JSON.stringify(value)}`);
  for (const [name, check] of Object.entries(checks) as [string, (v: unknown) => boolean][]) {
    if (!check(value[name])) {
      fail(step, `${what}.${name} is ${JSON.stringify(value[name])}`);
    }
  }
  return value;
}

/** The check of a nested object. */
const shaped =
  <T>(checks: Checks<T>) =>
  (v: unknown): boolean =>
    isObject(v) && (Object.entries(checks) as [string, (v: unknown) => boolean][]).every(([k, check]) => check(v[k]));

/** An array whose every element `check` accepts. */
const arrayOf =
  (check: (v: unknown) => boolean) =>
  (v: unknown): boolean =>
    Array.isArray(v) && v.every(check);
const isSource = (v: unknown): boolean =>
  v === "teamsReport" || v === "teamsAudit" || v === "sharePointAudit" || v === "groupMailbox";

const sourceStateChecks: Checks<SourceState> = {
  source: isSource,
  available: isBoolean,
  reason: orNull(isString),
};

const activityChecks: Checks<Group["activity"]> = {
  lastTeamsActivity: orNull(isTime),
  lastSharePointActivity: orNull(isTime),
  lastMailActivity: orNull(isTime),
  lastActivity: orNull(isTime),
};

const labelChecks: Checks<SensitivityLabel> = {
  labelId: isString,
  displayName: orNull(isString),
};

const groupChecks: Checks<Group> = {
  id: isUuid,
  displayName: orNull(isString),
  description: orNull(isString),
  mailNickname: orNull(isString),
  visibility: orNull(isString),
  createdDateTime: orNull(isTime),
  teamsEnabled: isBoolean,
  ownerCount: orNull(isCount),
  memberCount: orNull(isCount),
  activity: shaped(activityChecks),
  ownership: orNull((v) => v === "owned" || v === "none" || v === "disabled"),
  ownerlessSince: orNull(isTime),
  sensitivityLabels: orNull(arrayOf(shaped(labelChecks))),
};

const principalChecks: Checks<Principal> = {
  id: isUuid,
  displayName: orNull(isString),
  userPrincipalName: orNull(isString),
  type: isString,
};

const policyChecks: Checks<Policy> = {
  enabled: isBoolean,
  allowedGroupId: (v) => v === null || isUuid(v),
};

const namingProblemChecks: Checks<NamingProblem> = {
  property: (v) => v === "displayName" || v === "mailNickname",
  code: isString,
  message: isString,
  blockedWord: orNull(isString),
};

const namingPreviewChecks: Checks<NamingPreview> = {
  displayName: isString,
  mailNickname: orNull(isString),
  affixesAdded: isBoolean,
  allowed: isBoolean,
  problems: arrayOf(shaped(namingProblemChecks)),
};

const activityItemChecks: Checks<ActivityItem> = {
  groupId: isUuid,
  displayName: isString,
  lastTeamsActivity: orNull(isTime),
  lastSharePointActivity: orNull(isTime),
  lastMailActivity: orNull(isTime),
  lastActivity: orNull(isTime),
  sources: arrayOf(isSource),
};

const signals = [
  "teams",
  "sharePointFileEdit",
  "sharePointFileView",
  "sharePointPage",
  "sharePointList",
  "mail",
  "teamsReport",
  "teamsAudit",
];
const isSignal = (v: unknown): boolean => typeof v === "string" && signals.includes(v);

const lifecyclePolicyChecks: Checks<LifecyclePolicy> = {
  inactivityDays: isCount,
  signals: arrayOf(isSignal),
  exclusions: (v) => v === undefined || isObject(v),
  reviewWindowDays: isCount,
  onNoAnswer: (v) => isObject(v) && (v.action === "nothing" || v.action === "archive"),
  maxActionsPerDay: isCount,
  execution: (v) => v === undefined || v === "manual" || v === "automatic",
};

const candidateChecks: Checks<Candidate> = {
  groupId: isUuid,
  displayName: isString,
  inactiveSince: orNull(isTime),
  inactiveDays: isCount,
  signals: arrayOf((v) => isObject(v) && isSignal(v.signal) && orNull(isTime)(v.last)),
  nextStep: (v) => isObject(v) && v.step === "review" && orNull(isTime)(v.due),
};

const withholdingChecks: Checks<Withholding> = {
  reason: (v) => v === "noData" || v === "stale" || v === "sourceUnavailable" || v === "historyTooShort",
  message: isString,
  signals: arrayOf(isSignal),
  completeUntil: orNull(isTime),
  until: orNull(isTime),
};

const candidatePageChecks: Checks<CandidatePage> = {
  value: arrayOf(shaped(candidateChecks)),
  withheld: orNull(shaped(withholdingChecks)),
  groupsJudged: isCount,
  dataCompleteUntil: orNull(isTime),
  policy: shaped(lifecyclePolicyChecks),
};

const signalDetailChecks: Checks<SignalDetail> = {
  signal: isSignal,
  last: orNull(isTime),
  observedSince: orNull(isTime),
  available: isBoolean,
  observable: isBoolean,
  activeDays: (v) => {
    if (v === null) return true;
    if (!isObject(v) || !isCount(v.last7) || !isCount(v.last30) || !isCount(v.last90)) return false;
    const [d7, d30, d90] = [v.last7 as number, v.last30 as number, v.last90 as number];
    return d7 <= 7 && d7 <= d30 && d30 <= d90 && d90 <= 90;
  },
  reported: (v) => {
    if (v === null) return true;
    if (!isObject(v) || typeof v.reportRefreshDate !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(v.reportRefreshDate)) return false;
    const teams = v.report === "getTeamsTeamActivityDetail";
    if (!teams && v.report !== "getOffice365GroupsActivityDetail") return false;
    const names = teams ? ["channelMessages", "meetingsOrganized", "reactions"] : ["receivedEmails"];
    const periods = [v.last7, v.last30, v.last90];
    const counts = (p: unknown, n: string): number => (isObject(p) && isCount(p[n]) ? (p[n] as number) : -1);
    // Each period's counts are those the report names, and a longer period holds the shorter.
    return periods.every((p) => isObject(p) && Object.keys(p).sort().join() === [...names].sort().join())
      && names.every((n) => {
        const [d7, d30, d90] = periods.map((p) => counts(p, n)) as [number, number, number];
        return d7 >= 0 && d7 <= d30 && d30 <= d90;
      });
  },
  bySource: arrayOf((v) => isObject(v) && isSource(v.source) && orNull(isTime)(v.last)),
};

const successorChecks: Checks<Successor> = {
  id: isUuid,
  displayName: orNull(isString),
  userPrincipalName: isString,
  activeDays: (v) => isCount(v) && (v as number) >= 1 && (v as number) <= 90,
  lastActiveDay: orNull((v) => typeof v === "string" && /^\d{4}-\d{2}-\d{2}$/.test(v)),
};

const successorsChecks: Checks<Successors> = {
  groupId: isUuid,
  displayName: isString,
  windowDays: (v) => v === 90,
  successors: arrayOf(shaped(successorChecks)),
  membersConsidered: isCount,
  activeMembers: isCount,
  guestsLeftOut: isCount,
  disabledLeftOut: orNull(isCount),
  auditFeed: isBoolean,
  dataCompleteUntil: orNull(isTime),
  asOf: isTime,
};

const groupActivityChecks: Checks<GroupActivity> = {
  groupId: isUuid,
  displayName: isString,
  signals: arrayOf(shaped(signalDetailChecks)),
  lastSharePointActivity: orNull(isTime),
  lastActivity: orNull(isTime),
  sources: arrayOf(isSource),
  dataCompleteUntil: orNull(isTime),
};

const reviewChecks: Checks<Review> = {
  groupId: isUuid,
  displayName: isString,
  reason: isString,
  openedAt: isTime,
  dueAt: isTime,
  state: (v) => v === "pending" || v === "kept" || v === "archived" || v === "deleted" || v === "restored",
  decidedBy: orNull((v) => isUuid(v) || v === "automatic"),
  decidedAt: orNull(isTime),
  action: orNull((v) => v === "archive" || v === "delete" || v === "restore"),
  actionState: orNull((v) => v === "intended" || v === "done"),
  actionAt: orNull(isTime),
  actionDoneAt: orNull(isTime),
  noAnswer: isBoolean,
};

const openedReviewsChecks: Checks<OpenedReviews> = {
  opened: arrayOf(shaped(reviewChecks)),
  skipped: arrayOf((v) => isObject(v) && isUuid(v.groupId) && isString(v.reason)),
};

const dueActionChecks: Checks<DueAction> = {
  groupId: isUuid,
  displayName: isString,
  step: (v) => v === "archive" || v === "delete" || v === "keep",
  dueSince: orNull(isTime),
  reason: isString,
  inProgress: isBoolean,
  notNow: orNull(isString),
};

const dueActionListChecks: Checks<DueActionList> = {
  value: arrayOf(shaped(dueActionChecks)),
  execution: (v) => v === "manual" || v === "automatic",
  takenToday: isCount,
  maxActionsPerDay: isCount,
};

const confirmedActionsChecks: Checks<ConfirmedActions> = {
  done: arrayOf(shaped(reviewChecks)),
  underway: arrayOf(shaped(reviewChecks)),
  kept: arrayOf(shaped(reviewChecks)),
  skipped: arrayOf((v) => isObject(v) && isUuid(v.groupId) && isString(v.reason)),
};

const webhookChecks: Checks<Webhook> = {
  url: isString,
  secret: orNull((v) => typeof v === "string" && v.startsWith("whsec_")),
  events: arrayOf(isString),
};

const syncQueuedChecks: Checks<SyncQueued> = {
  tenantId: isUuid,
  status: (v) => v === "queued" || v === "started",
  full: isBoolean,
};

const runChecks: Checks<RunRecord> = {
  startedAt: isTime,
  endedAt: isTime,
  outcome: (v) => v === "finished" || v === "continues" || v === "deferred" || v === "failed",
  groups: isCount,
  rowsWritten: isCount,
  rowsRefused: isCount,
  auditBlobs: isCount,
  auditRecords: isCount,
  auditBlobsLost: isCount,
  requests: isCount,
  error: (v) => v === undefined || isString(v),
};

const conditionChecks: Checks<SyncCondition> = {
  kind: (v) => v === "consent_revoked" || v === "permission_missing" || v === "list_missing",
  detail: isString,
  since: isTime,
  attempts: isCount,
  nextAttempt: isTime,
};

const syncStateChecks: Checks<SyncState> = {
  lastRun: orNull(shaped(runChecks)),
  running: isBoolean,
  runningUntil: orNull(isTime),
  nextDue: isTime,
  condition: orNull(shaped(conditionChecks)),
  dataCompleteUntil: orNull(isTime),
  sources: arrayOf(shaped(sourceStateChecks)),
};

/** A page: `value` is an array of items that pass `checks`, `nextCursor` a string or null. */
function page<P extends { value: I[]; nextCursor?: string | null }, I>(
  step: string,
  what: string,
  body: P | undefined,
  checks: Checks<I>,
): P {
  if (!isObject(body) || !Array.isArray(body.value)) {
    fail(step, `${what} is not a page: ${JSON.stringify(body)}`);
  }
  if (!orNull(isString)(body.nextCursor)) fail(step, `${what}.nextCursor is ${JSON.stringify(body.nextCursor)}`);
  body.value.forEach((item, i) => conforms(step, `${what}.value[${i}]`, item, checks));
  return body;
}

/** Fails unless the answer has the expected status (and, for an error, says what it was). */
function expectStatus(
  step: string,
  response: Response,
  expected: number,
  error?: ErrorBody,
): void {
  if (response.status !== expected) {
    const detail = error ? ` ${error.error.code}: ${error.error.message}` : "";
    fail(step, `expected ${expected}, got ${response.status}${detail}`);
  }
}

/** The body of a 2xx answer that has one. */
function body<T>(step: string, data: T | undefined): T {
  if (data === undefined) fail(step, "no body");
  return data;
}

/** An error answer: its status and `error.code` are the ones expected. */
function expectError(
  step: string,
  response: Response,
  error: ErrorBody | undefined,
  status: number,
  code: ErrorCode,
): ErrorBody {
  if (response.status !== status || !error) {
    fail(step, `expected ${status} ${code}, got ${response.status} ${JSON.stringify(error)}`);
  }
  const checked = conforms(step, "error", error.error, { code: isString, message: isString });
  if (checked.code !== code) fail(step, `expected error.code ${code}, got ${checked.code}`);
  return error;
}

function say(step: string, line: string): void {
  console.log(`${step}: ${line}`);
}

// --- The steps --------------------------------------------------------------------------------

const { BASE_URL: baseUrl, TOKEN: token } = process.env;
if (!baseUrl || !token) {
  console.error("ts-client: set BASE_URL and TOKEN, e.g. BASE_URL=http://127.0.0.1:7071 TOKEN=<bearer token>");
  process.exit(2);
}

const client = createClient<paths>({
  baseUrl: baseUrl.replace(/\/+$/, ""),
  headers: { Authorization: `Bearer ${token}` },
});

/** Pages through the groups, `top` at a time, following `nextCursor` for up to `pages` pages. */
async function listGroups(top: number, pages: number): Promise<Group[]> {
  const step = "list groups";
  const seen = new Map<string, Group>();
  let cursor: string | undefined;
  let read = 0;
  do {
    const query = cursor === undefined ? { top } : { top, cursor };
    const { data, error, response } = await client.GET("/api/groups", { params: { query } });
    expectStatus(step, response, 200, error);
    const groups: GroupPage = page(step, `page ${read + 1}`, data, groupChecks);
    if (groups.value.length > top) fail(step, `page ${read + 1} has ${groups.value.length} groups, top was ${top}`);
    for (const g of groups.value) {
      if (seen.has(g.id)) fail(step, `group ${g.id} came twice (page ${read + 1})`);
      seen.set(g.id, g);
    }
    read += 1;
    cursor = groups.nextCursor ?? undefined;
  } while (cursor !== undefined && read < pages);
  if (seen.size === 0) fail(step, "the tenant has no groups");
  say(step, `${read} pages of at most ${top}, ${seen.size} groups, no id twice${cursor ? ", more to come" : ""}`);
  return [...seen.values()];
}

async function readGroup(id: string): Promise<Group> {
  const step = "read group";
  const { data, error, response } = await client.GET("/api/groups/{id}", { params: { path: { id } } });
  expectStatus(step, response, 200, error);
  const group = conforms(step, "group", body(step, data), groupChecks);
  if (group.id !== id) fail(step, `asked for ${id}, got ${group.id}`);
  if (typeof group.ownerCount !== "number" || typeof group.memberCount !== "number") {
    fail(step, "a single group should have live owner and member counts");
  }
  say(step, `${group.displayName} (${group.visibility}): ${group.ownerCount} owners, ${group.memberCount} members`);
  return group;
}

/** The ownerless groups (no owner, or every owner's account disabled), as the last check found them. */
async function ownerlessGroups(): Promise<void> {
  const step = "ownerless groups";
  for (const ownership of ["none", "disabled"] as const) {
    const { data, error, response } = await client.GET("/api/groups", { params: { query: { ownership, top: 999 } } });
    expectStatus(step, response, 200, error);
    const groups: GroupPage = page(step, ownership, data, groupChecks);
    const wrong = groups.value.find((g) => g.ownership !== ownership || g.ownerlessSince === null);
    if (wrong) fail(step, `${wrong.id} listed as ${ownership} but is ${wrong.ownership}`);
    if (groups.ownershipCheckedAt === undefined) fail(step, "no ownershipCheckedAt");
    say(step, `${groups.value.length} with ${ownership === "none" ? "no owner" : "disabled owners only"} (checked ${groups.ownershipCheckedAt ?? "never"})`);
    const group = groups.value[0];
    if (group) await successors(group.id);
  }
}

/** Who could own a group next: at most three members, most active first. */
async function successors(id: string): Promise<void> {
  const step = "successors";
  const { data, error, response } = await client.GET("/api/groups/{id}/successors", { params: { path: { id } } });
  expectStatus(step, response, 200, error);
  const s = conforms(step, "successors", body(step, data), successorsChecks);
  if (s.successors.length > 3) fail(step, `${s.successors.length} suggested`);
  const days = s.successors.map((x) => x.activeDays);
  if (days.some((d, i) => i > 0 && d > (days[i - 1] ?? 0))) fail(step, `not most active first: ${days.join(", ")}`);
  say(step, `${s.displayName}: ${s.successors.map((x) => `${x.displayName ?? x.id} (${x.activeDays} days)`).join(", ") || "nobody active"} of ${s.membersConsidered} members`);
}

/** The names the tenant's naming policy gives a new group (what the UI shows before a create). */
async function previewNames(displayName: string, mailNickname: string): Promise<NamingPreview> {
  const step = "naming preview";
  const { data, error, response } = await client.GET("/api/policy/naming/preview", {
    params: { query: { displayName, mailNickname } },
  });
  expectStatus(step, response, 200, error);
  const preview = conforms(step, "naming preview", body(step, data), namingPreviewChecks);
  if (!preview.allowed) fail(step, `${displayName} refused: ${JSON.stringify(preview.problems)}`);
  say(step, `${displayName} / ${mailNickname} → ${preview.displayName} / ${preview.mailNickname}`);
  return preview;
}

async function createGroup(): Promise<Group> {
  const step = "create group";
  const mailNickname = `tsclient-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const displayName = `TS client ${mailNickname}`;
  const names = await previewNames(displayName, mailNickname);
  const { data, error, response } = await client.POST("/api/groups", {
    body: {
      displayName,
      mailNickname,
      description: "Created by tests/ts-client/client.ts",
      visibility: "Private",
    },
  });
  expectStatus(step, response, 201, error);
  const group = conforms(step, "group", body(step, data), groupChecks);
  if (group.displayName !== names.displayName || group.mailNickname !== names.mailNickname) {
    fail(step, `named ${group.displayName} / ${group.mailNickname}, the preview said ${names.displayName} / ${names.mailNickname}`);
  }
  const location = response.headers.get("Location");
  if (location !== `/api/groups/${group.id}`) fail(step, `Location is ${location}, expected /api/groups/${group.id}`);
  say(step, `201 ${group.displayName}, Location ${location}`);
  return group;
}

/** A group's members (the first page, up to 999: enough here). */
async function members(step: string, id: string): Promise<Principal[]> {
  const { data, error, response } = await client.GET("/api/groups/{id}/members", {
    params: { path: { id }, query: { top: 999 } },
  });
  expectStatus(step, response, 200, error);
  const listed: PrincipalPage = page(step, "members", data, principalChecks);
  return listed.value;
}

/** A user who is a member of one of `groups` but not of `target`. */
async function someOtherUser(step: string, groups: Group[], target: Group): Promise<Principal> {
  const already = new Set((await members(step, target.id)).map((p) => p.id));
  for (const g of groups) {
    const user = (await members(step, g.id)).find((p) => p.type === "user" && !already.has(p.id));
    if (user) return user;
  }
  return fail(step, "no user found among the members of the listed groups");
}

async function addAndRemoveMember(groups: Group[], target: Group): Promise<void> {
  const step = "add and remove a member";
  const user = await someOtherUser(step, groups, target);
  const path = { id: target.id };
  const added = await client.POST("/api/groups/{id}/members", { params: { path }, body: { id: user.id } });
  expectStatus(step, added.response, 204, added.error);
  if (!(await members(step, target.id)).some((p) => p.id === user.id)) fail(step, "added, but not listed");
  const removed = await client.DELETE("/api/groups/{id}/members/{userId}", {
    params: { path: { id: target.id, userId: user.id } },
  });
  expectStatus(step, removed.response, 204, removed.error);
  if ((await members(step, target.id)).some((p) => p.id === user.id)) fail(step, "removed, but still listed");
  say(step, `204 ${user.userPrincipalName ?? user.id} added to ${target.mailNickname}, 204 removed again`);
}

async function putPolicy(step: string, policy: Policy): Promise<Policy> {
  const { data, error, response } = await client.PUT("/api/policy/group-creation", { body: policy });
  expectStatus(step, response, 200, error);
  const now = conforms(step, "policy", body(step, data), policyChecks);
  if (now.enabled !== policy.enabled || now.allowedGroupId !== policy.allowedGroupId) {
    fail(step, `set ${JSON.stringify(policy)}, answered ${JSON.stringify(now)}`);
  }
  return now;
}

async function creationPolicy(): Promise<void> {
  const step = "creation policy";
  const read = await client.GET("/api/policy/group-creation");
  expectStatus(step, read.response, 200, read.error);
  const original = conforms(step, "policy", body(step, read.data), policyChecks);
  const changed = await putPolicy(step, { enabled: !original.enabled, allowedGroupId: null });
  try {
    const reread = await client.GET("/api/policy/group-creation");
    expectStatus(step, reread.response, 200, reread.error);
    const after = conforms(step, "policy", body(step, reread.data), policyChecks);
    if (after.enabled !== changed.enabled || after.allowedGroupId !== null) {
      fail(step, `set ${JSON.stringify(changed)}, read back ${JSON.stringify(after)}`);
    }
  } catch (e) {
    // Put the tenant's policy back, whatever failed; the failure is what gets reported.
    await client.PUT("/api/policy/group-creation", { body: original }).catch(() => undefined);
    throw e;
  }
  await putPolicy(step, original);
  say(
    step,
    `enabled ${original.enabled} → ${changed.enabled} (read back) → ${original.enabled}, ` +
      `allowedGroupId ${original.allowedGroupId} restored`,
  );
}

async function inactiveGroups(days: number): Promise<void> {
  const step = "inactive groups";
  const { data, error, response } = await client.GET("/api/activity", { params: { query: { inactiveDays: days } } });
  expectStatus(step, response, 200, error);
  const items: ActivityPage = page(step, "activity", data, activityItemChecks);
  if (!orNull(isTime)(items.dataCompleteUntil)) {
    fail(step, `activity.dataCompleteUntil is ${JSON.stringify(items.dataCompleteUntil)}`);
  }
  const since = Date.now() - days * 24 * 3600 * 1000;
  for (const item of items.value) {
    if (item.lastActivity && Date.parse(item.lastActivity) > since) {
      fail(step, `${item.groupId} was active ${item.lastActivity}, within ${days} days`);
    }
  }
  say(step, `${items.value.length} groups without activity for ${days} days${items.nextCursor ? " (first page)" : ""}`);
}

/** Sets the tenant's lifecycle policy (kept in its own SharePoint site), reads it back, and
 * asks for its dry run: the groups it would act on, or why none may be judged now. */
async function lifecycle(): Promise<void> {
  const step = "lifecycle policy";
  const policy: LifecyclePolicy = {
    inactivityDays: 90,
    signals: ["teams", "sharePointFileEdit"],
    exclusions: { namePrefixes: ["HR-"], youngerThanDays: 30 },
    reviewWindowDays: 14,
    onNoAnswer: { action: "archive", deleteAfterDays: 60 },
    maxActionsPerDay: 50,
    execution: "manual",
  };
  const put = await client.PUT("/api/lifecycle/policy", { body: policy });
  expectStatus(step, put.response, 200, put.error);
  conforms(step, "policy", body(step, put.data), lifecyclePolicyChecks);
  const read = await client.GET("/api/lifecycle/policy");
  expectStatus(step, read.response, 200, read.error);
  const stored = conforms(step, "policy", body(step, read.data), lifecyclePolicyChecks);
  if (stored.inactivityDays !== 90 || stored.signals.join() !== policy.signals.join()) {
    fail(step, `set ${JSON.stringify(policy)}, read ${JSON.stringify(stored)}`);
  }
  say(step, `${stored.inactivityDays} days on ${stored.signals.join(", ")} (read back)`);

  const dry = "lifecycle dry run";
  const { data, error, response } = await client.GET("/api/lifecycle/candidates");
  expectStatus(dry, response, 200, error);
  const candidates = conforms(dry, "candidates", body(dry, data), candidatePageChecks);
  if (candidates.withheld && candidates.value.length > 0) {
    fail(dry, `candidates although withheld (${candidates.withheld.reason})`);
  }
  say(
    dry,
    candidates.withheld
      ? `no candidate: ${candidates.withheld.reason} (${candidates.withheld.message})`
      : `${candidates.value.length} candidates of ${candidates.groupsJudged} groups`,
  );
}

/** One group's activity, signal by signal, with since when each has been observed. */
async function groupActivity(id: string): Promise<void> {
  const step = "group activity";
  const { data, error, response } = await client.GET("/api/groups/{id}/activity", { params: { path: { id } } });
  expectStatus(step, response, 200, error);
  const activity = conforms(step, "activity", body(step, data), groupActivityChecks);
  const seen = activity.signals.filter((s) => s.last !== null).map((s) => s.signal);
  say(step, `${activity.displayName}: ${seen.length ? seen.join(", ") : "no activity seen"}`);
}

/** The reviews; a review opened for the first candidate, if there is one, and kept (an
 * attestation, harmless to the group); a decision on a group without a review is 404. */
async function reviews(): Promise<void> {
  const step = "lifecycle reviews";
  const list = await client.GET("/api/lifecycle/reviews");
  expectStatus(step, list.response, 200, list.error);
  const all = conforms(step, "reviews", body(step, list.data), { value: arrayOf(shaped(reviewChecks)) });
  const dry = await client.GET("/api/lifecycle/candidates");
  expectStatus(step, dry.response, 200, dry.error);
  const first = body(step, dry.data).value[0];
  if (first) {
    const opened = await client.POST("/api/lifecycle/reviews", { body: { groupIds: [first.groupId] } });
    expectStatus(step, opened.response, 200, opened.error);
    conforms(step, "opened", body(step, opened.data), openedReviewsChecks);
    const kept = await client.POST("/api/groups/{id}/review", {
      params: { path: { id: first.groupId } },
      body: { decision: "keep" },
    });
    expectStatus(step, kept.response, 200, kept.error);
    const review = conforms(step, "review", body(step, kept.data), reviewChecks);
    say(step, `${all.value.length} reviews; ${first.displayName} reviewed and ${review.state}`);
  } else {
    say(step, `${all.value.length} reviews; no candidate to review now`);
  }
  const none = await client.POST("/api/groups/{id}/review", {
    params: { path: { id: "00000000-0000-0000-0000-0000000000aa" } },
    body: { decision: "keep" },
  });
  expectError(step, none.response, none.error, 404, "not_found");
}

/** What the policy's onNoAnswer calls for now; confirming a group with nothing due skips it
 * with the reason (nothing is archived or deleted by this run). */
async function dueActions(): Promise<void> {
  const step = "lifecycle due actions";
  const list = await client.GET("/api/lifecycle/actions");
  expectStatus(step, list.response, 200, list.error);
  const due = conforms(step, "due actions", body(step, list.data), dueActionListChecks);
  const nothingDue = "00000000-0000-0000-0000-0000000000ab";
  const confirmed = await client.POST("/api/lifecycle/actions", { body: { groupIds: [nothingDue] } });
  expectStatus(step, confirmed.response, 200, confirmed.error);
  const out = conforms(step, "confirmed", body(step, confirmed.data), confirmedActionsChecks);
  if (out.skipped.length !== 1 || out.skipped[0]?.groupId !== nothingDue) {
    fail(step, "a group with nothing due was not skipped");
  }
  say(step, `${due.value.length} due (${due.execution}, ${due.takenToday} of ${due.maxActionsPerDay} taken today); a group with nothing due skipped`);
}

/** Registers a webhook (its signing secret comes back once), reads it (no secret), removes it. */
async function webhook(): Promise<void> {
  const step = "lifecycle webhook";
  const put = await client.PUT("/api/lifecycle/webhook", { body: { url: "https://hooks.example.com/groupmgr" } });
  expectStatus(step, put.response, 200, put.error);
  const made = conforms(step, "webhook", body(step, put.data), webhookChecks);
  if (!made.secret) fail(step, "no signing secret in the answer to the PUT");
  const read = await client.GET("/api/lifecycle/webhook");
  expectStatus(step, read.response, 200, read.error);
  const now = conforms(step, "webhook", body(step, read.data), webhookChecks);
  if (now.secret !== null) fail(step, "the secret is shown again");
  const removed = await client.DELETE("/api/lifecycle/webhook");
  expectStatus(step, removed.response, 204, removed.error);
  say(step, `${now.url} registered (${now.events.length} event types, secret shown once), then removed`);
}

async function startSync(): Promise<void> {
  const step = "start a sync";
  const { data, error, response } = await client.POST("/api/sync", {});
  if (response.status === 409) {
    expectError(step, response, error, 409, "sync_in_progress");
    say(step, "409 sync_in_progress (one was already running)");
    return;
  }
  expectStatus(step, response, 202, error);
  const queued = conforms(step, "sync", body(step, data), syncQueuedChecks);
  say(step, `202 ${queued.status}${queued.full ? " (full)" : ""}`);
}

async function syncStatus(): Promise<void> {
  const step = "sync status";
  const { data, error, response } = await client.GET("/api/sync", {});
  expectStatus(step, response, 200, error);
  const state = conforms(step, "sync", body(step, data), syncStateChecks);
  const last = state.lastRun ? `last run ${state.lastRun.outcome} at ${state.lastRun.endedAt}` : "no run yet";
  const complete = state.dataCompleteUntil ? `activity complete until ${state.dataCompleteUntil}` : "activity not yet complete";
  say(step, `${last}; ${state.running ? "running" : "idle"}; next due ${state.nextDue}; ${complete}`);
}

async function refusedCreate(): Promise<void> {
  const step = "refused create";
  // Well typed, but the mail nickname has a space: the API refuses it.
  const { data, error, response } = await client.POST("/api/groups", {
    body: { displayName: "Refused", mailNickname: "has space" },
  });
  if (data !== undefined) fail(step, `created ${JSON.stringify(data)}`);
  const refused = expectError(step, response, error, 400, "invalid_input");
  say(step, `400 invalid_input: ${refused.error.message}`);
}

async function deleteGroup(group: Group): Promise<void> {
  const step = "delete the created group";
  const { error, response } = await client.DELETE("/api/groups/{id}", { params: { path: { id: group.id } } });
  expectStatus(step, response, 204, error);
  say(step, `204 ${group.mailNickname}`);
}

async function main(): Promise<void> {
  const groups = await listGroups(2, 3);
  const first = groups[0];
  if (!first) return fail("list groups", "no group");
  await readGroup(first.id);
  await groupActivity(first.id);
  const created = await createGroup();
  try {
    await addAndRemoveMember(groups, created);
    await creationPolicy();
    await inactiveGroups(30);
    await lifecycle();
    await reviews();
    await dueActions();
    await webhook();
    await startSync();
    await syncStatus();
    await ownerlessGroups();
    await refusedCreate();
  } catch (e) {
    // Leave no test group behind, whatever failed; the failure is what gets reported.
    await client.DELETE("/api/groups/{id}", { params: { path: { id: created.id } } }).catch(() => undefined);
    throw e;
  }
  await deleteGroup(created);
  console.log("ts-client: every step passed");
}

main().catch((e: unknown) => {
  if (e instanceof Unexpected) {
    console.error(`ts-client: FAILED: ${e.message}`);
  } else {
    // Not an answer we disliked but no answer at all (the app is down, …) or a bug here.
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : "";
    console.error(`ts-client: FAILED: ${e instanceof Error ? e.message : String(e)}${cause}`);
    console.error(e);
  }
  process.exit(1);
});
