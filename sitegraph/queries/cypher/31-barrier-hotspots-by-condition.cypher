// name: barrier-hotspots-by-condition
// group: Barriers and tactics
// title: Barrier hot spots by condition
// description: How often each barrier was raised in interactions about studies of each condition, and
//   at how many sites: barriers that come with the disease area rather than with the site.
// param min_interactions: integer = 1, example 2 -- only (condition, barrier) pairs raised at least this often
// param limit: integer = 25, example 25 -- how many rows
// returns: table
MATCH (c:Condition)<-[:STUDIES]-(:Study)<-[:ABOUT_STUDY]-(i:Interaction)-[:CONCERNS]->(b:Barrier)
OPTIONAL MATCH (i)-[:WITH_SITE]->(s:Site)
WITH c, b, count(DISTINCT i) AS interactions, count(DISTINCT s) AS sites
WHERE interactions >= $min_interactions
RETURN c.name AS condition,
       c.therapeutic_area AS therapeutic_area,
       b.id AS barrier_id,
       b.label AS barrier,
       interactions,
       sites
ORDER BY interactions DESC, sites DESC, condition, barrier_id
LIMIT toInteger($limit)
