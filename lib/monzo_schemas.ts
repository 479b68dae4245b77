import { z } from "zod";

// Only the fields the exporter uses are declared: unknown extra fields are
// dropped, and a field Monzo stops sending fails here, in one place.

const pence = z.number().int();

/** The answer of `POST /oauth2/token`. */
export const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  refresh_token: z.string().optional(),
  expires_in: z.number().positive(),
  user_id: z.string().min(1),
});
/** A token grant from Monzo. */
export type TokenResponse = z.infer<typeof tokenResponseSchema>;

/** The answer of `GET /ping/whoami`. */
export const whoamiSchema = z.object({
  authenticated: z.boolean(),
  user_id: z.string().min(1),
});
/** Who a token belongs to. */
export type Whoami = z.infer<typeof whoamiSchema>;

const ownerSchema = z.object({
  user_id: z.string(),
  preferred_name: z.string().optional(),
});

/** One entry of `GET /accounts`. */
export const accountSchema = z.object({
  id: z.string().min(1),
  type: z.string(),
  description: z.string().default(""),
  closed: z.boolean().default(false),
  currency: z.string().optional(),
  owners: z.array(ownerSchema).default([]),
});
/** An account as Monzo lists it. */
export type Account = z.infer<typeof accountSchema>;

/** The answer of `GET /accounts`. */
export const accountsSchema = z.object({ accounts: z.array(accountSchema) });

/** The answer of `GET /balance` (amounts in minor units, signed). */
export const balanceSchema = z.object({
  balance: pence,
  total_balance: pence,
  balance_including_flexible_savings: pence,
  currency: z.string().min(1),
  spend_today: pence,
});
/** An account's balance in minor units. */
export type Balance = z.infer<typeof balanceSchema>;

/** One entry of `GET /pots`. */
export const potSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  balance: pence,
  currency: z.string().min(1),
  deleted: z.boolean().default(false),
  goal_amount: pence.nullish(),
  type: z.string().optional(),
});
/** A pot as Monzo lists it. */
export type Pot = z.infer<typeof potSchema>;

/** The answer of `GET /pots`. */
export const potsSchema = z.object({ pots: z.array(potSchema) });

/** Monzo's error body; every field is optional because proxies and OAuth errors differ. */
export const errorBodySchema = z.object({
  code: z.string().optional(),
  message: z.string().optional(),
  error: z.string().optional(),
  error_description: z.string().optional(),
});
