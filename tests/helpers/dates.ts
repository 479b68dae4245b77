// The instants at which date bugs hide, shared by the tests that prove the demo and the budget month
// on each of them; tools/date_matrix.sh runs the date-sensitive tests under faketime at the same ones.

/** An awkward instant: what makes it awkward, and when it is (UTC). */
export interface AwkwardInstant {
  readonly name: string;
  /** RFC 3339 in UTC, as faketime is given it. */
  readonly utc: string;
  /** When its budget month began for month_start_day 1 (00:00 London on the 1st), worked out by hand. */
  readonly monthStart: string;
}

/** The 1st and 2nd of a month, last days, 29 February, both UK clock changes and New Year's Eve in London. */
export const AWKWARD_INSTANTS: readonly AwkwardInstant[] = [
  { name: "the first minute of 1 January (GMT)", utc: "2027-01-01T00:01:00Z", monthStart: "2027-01-01T00:00:00Z" },
  { name: "the 2nd of the month, 10:00", utc: "2027-01-02T10:00:00Z", monthStart: "2027-01-01T00:00:00Z" },
  {
    name: "the first minute of 1 May in London (BST, still 30 April in UTC)",
    utc: "2027-04-30T23:01:00Z",
    monthStart: "2027-04-30T23:00:00Z",
  },
  {
    name: "the last day of a month, 23:59 in London (BST)",
    utc: "2027-06-30T22:59:00Z",
    monthStart: "2027-05-31T23:00:00Z",
  },
  { name: "29 February, midday", utc: "2028-02-29T12:00:00Z", monthStart: "2028-02-01T00:00:00Z" },
  {
    name: "29 February, 23:59 (the last day of a leap February)",
    utc: "2028-02-29T23:59:00Z",
    monthStart: "2028-02-01T00:00:00Z",
  },
  {
    name: "half an hour before the clocks go forward",
    utc: "2027-03-28T00:30:00Z",
    monthStart: "2027-03-01T00:00:00Z",
  },
  { name: "half an hour after the clocks go forward", utc: "2027-03-28T01:30:00Z", monthStart: "2027-03-01T00:00:00Z" },
  {
    name: "01:30 BST, half an hour before the clocks go back",
    utc: "2027-10-31T00:30:00Z",
    monthStart: "2027-09-30T23:00:00Z",
  },
  {
    name: "01:30 GMT, half an hour after the clocks go back",
    utc: "2027-10-31T01:30:00Z",
    monthStart: "2027-09-30T23:00:00Z",
  },
  { name: "23:59 on 31 December in London", utc: "2027-12-31T23:59:00Z", monthStart: "2027-12-01T00:00:00Z" },
];
