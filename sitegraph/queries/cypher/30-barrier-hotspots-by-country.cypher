// name: barrier-hotspots-by-country
// group: Barriers and tactics
// title: Barrier hot spots by country
// description: How often each barrier was raised in interactions with sites of each country, and at how
//   many sites, optionally since a date: where a barrier is systemic rather than local.
// param since: string = null, example "2024-01-01" -- only interactions on or after this ISO date; all when omitted
// param min_interactions: integer = 1, example 2 -- only (country, barrier) pairs raised at least this often
// param limit: integer = 25, example 25 -- how many rows
// returns: table
MATCH (s:Site)<-[:WITH_SITE]-(i:Interaction)-[:CONCERNS]->(b:Barrier)
WHERE $since IS NULL OR i.occurred_at >= $since
WITH s.country AS country, b, count(DISTINCT i) AS interactions, count(DISTINCT s) AS sites
WHERE interactions >= $min_interactions
RETURN country,
       b.id AS barrier_id,
       b.label AS barrier,
       interactions,
       sites
ORDER BY interactions DESC, sites DESC, country, barrier_id
LIMIT toInteger($limit)
