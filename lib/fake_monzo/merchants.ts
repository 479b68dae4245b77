// The shops the made-up history buys from, with the fields `expand[]=merchant` returns.

import { objectId } from "./random.ts";
import type { FakeMerchant } from "./transaction.ts";

interface Shop {
  name: string;
  category: string;
  emoji: string;
  online: boolean;
  city: string;
  country: string;
  postcode: string;
  latitude: number;
  longitude: number;
}

const SHOPS = {
  tesco: shop("Tesco", "groceries", "🛒", "London", "E8 2LX"),
  sainsburys: shop("Sainsbury's", "groceries", "🛒", "London", "N1 0PS"),
  lidl: shop("Lidl", "groceries", "🛒", "London", "E5 8NA"),
  ocado: { ...shop("Ocado", "groceries", "🛒", "Hatfield", "AL10 9UL"), online: true },
  waitrose: shop("Waitrose & Partners", "groceries", "🛒", "London", "N1 9AZ"),
  coop: shop("Co-op", "groceries", "🛒", "Brighton", "BN1 4GH"),
  pret: shop("Pret A Manger", "eating_out", "☕️", "London", "EC2A 4NE"),
  greggs: shop("Greggs", "eating_out", "🥐", "Brighton", "BN1 1AE"),
  dishoom: shop("Dishoom", "eating_out", "🍛", "London", "N1C 4AB"),
  nandos: shop("Nando's", "eating_out", "🍗", "London", "E8 1DY"),
  francoManca: shop("Franco Manca", "eating_out", "🍕", "London", "E9 7JA"),
  pub: shop("The Eagle", "eating_out", "🍺", "Brighton", "BN1 4JL"),
  tfl: { ...shop("Transport for London", "transport", "🚇", "London", "SW1H 0TL"), online: true },
  southern: shop("Southern Railway", "transport", "🚆", "Brighton", "BN1 3XP"),
  amazon: { ...shop("Amazon", "shopping", "📦", "London", "EC2A 2FA"), online: true },
  uniqlo: shop("Uniqlo", "shopping", "👕", "London", "W1B 5BH"),
  boots: shop("Boots", "personal_care", "💊", "London", "E8 1HR"),
  petsAtHome: shop("Pets at Home", "shopping", "🐶", "London", "E9 5EN"),
  netflix: { ...shop("Netflix", "entertainment", "🎬", "Amsterdam", "1018 XH", "NLD"), online: true },
  spotify: { ...shop("Spotify", "entertainment", "🎵", "Stockholm", "111 53", "SWE"), online: true },
  cineworld: shop("Cineworld", "entertainment", "🍿", "London", "E1W 1YW"),
  ticketmaster: { ...shop("Ticketmaster", "entertainment", "🎟", "London", "W1T 3NL"), online: true },
  steam: { ...shop("Steam", "entertainment", "🎮", "Bellevue", "98004", "USA"), online: true },
  puregym: shop("PureGym", "personal_care", "🏋️", "London", "E8 3DL"),
  premierInn: shop("Premier Inn", "holidays", "🏨", "Edinburgh", "EH1 1BQ"),
  pastelaria: shop("Pastelaria Alfama", "eating_out", "🥐", "Lisboa", "1100-341", "PRT"),
  pingoDoce: shop("Pingo Doce", "groceries", "🛒", "Lisboa", "1200-109", "PRT"),
  metroLisboa: shop("Metropolitano de Lisboa", "transport", "🚇", "Lisboa", "1050-099", "PRT"),
  hotelLisboa: shop("Hotel Baixa Lisboa", "holidays", "🏨", "Lisboa", "1100-053", "PRT"),
} satisfies Record<string, Shop>;

/** A key of the fake's merchant catalogue. */
export type ShopKey = keyof typeof SHOPS;

// Ids are worked out once: a year of history asks for a merchant well over a thousand times.
const IDS = new Map<ShopKey, { id: string; group: string }>();

/** The expanded merchant object for `key`, with a stable id; a new object each time, so rows share nothing. */
export function merchant(key: ShopKey): FakeMerchant {
  const found: Shop = SHOPS[key];
  let ids = IDS.get(key);
  if (!ids) {
    ids = { id: objectId("merch", key), group: objectId("grp", `group|${key}`) };
    IDS.set(key, ids);
  }
  return {
    id: ids.id,
    group_id: ids.group,
    name: found.name,
    logo: `https://mondo-logo-cache.example.invalid/${key}.png`,
    emoji: found.emoji,
    category: found.category,
    online: found.online,
    atm: false,
    address: {
      short_formatted: `${found.city}, ${found.postcode}`,
      city: found.city,
      country: found.country,
      postcode: found.postcode,
      latitude: found.latitude,
      longitude: found.longitude,
    },
    disable_feedback: false,
    metadata: {},
  };
}

function shop(name: string, category: string, emoji: string, city: string, postcode: string, country = "GBR"): Shop {
  // Positions only need to look plausible; none of the exporter's figures depend on them.
  const [latitude, longitude] = city === "Lisboa" ? [38.7115, -9.1335] : [51.5386, -0.0552];
  return { name, category, emoji, online: false, city, country, postcode, latitude, longitude };
}
