/** Returns the current time in epoch milliseconds; injectable so tests can use a fake clock. */
export type Clock = () => number;

export const systemClock: Clock = Date.now;
