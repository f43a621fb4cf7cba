// name: site-timeline
// group: Interactions
// title: Interaction timeline for a site
// description: A site's calls, emails, visits, faxes and portal messages, newest first, each with the
//   investigators and studies it involved, the barriers it raised and the tactics it applied (with their
//   outcome).
// param site_id: string, required, example "site:guangdong-provincial-peoples-hospital-guangzhou-china" -- id of the site
// param since: string = null, example "2024-01-01" -- only interactions on or after this ISO date; all when omitted
// param limit: integer = 50, example 20 -- how many interactions
// returns: table
MATCH (s:Site {id: $site_id})<-[:WITH_SITE]-(i:Interaction)
WHERE $since IS NULL OR i.occurred_at >= $since
WITH i
ORDER BY i.occurred_at DESC, i.id
LIMIT toInteger($limit)
OPTIONAL MATCH (i)-[:WITH_INVESTIGATOR]->(inv:Investigator)
WITH i, collect(DISTINCT inv.name) AS investigators
OPTIONAL MATCH (i)-[:ABOUT_STUDY]->(st:Study)
WITH i, investigators, collect(DISTINCT st.id) AS studies
OPTIONAL MATCH (i)-[:CONCERNS]->(b:Barrier)
WITH i, investigators, studies, collect(DISTINCT b.label) AS barriers
OPTIONAL MATCH (i)-[a:APPLIED]->(t:Tactic)
WITH i, investigators, studies, barriers, collect(DISTINCT t.label + ' (' + coalesce(a.outcome, '?') + ')') AS tactics
RETURN i.occurred_at AS occurred_at,
       i.channel AS channel,
       i.direction AS direction,
       i.outcome AS outcome,
       i.sentiment AS sentiment,
       investigators,
       studies,
       barriers,
       tactics,
       left(coalesce(i.note, ''), 120) AS note
ORDER BY occurred_at DESC, i.id
