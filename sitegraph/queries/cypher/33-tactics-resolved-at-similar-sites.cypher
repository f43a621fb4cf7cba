// name: tactics-resolved-at-similar-sites
// group: Barriers and tactics
// title: Tactics that resolved a barrier at similar sites
// description: Sites similar to the given one (they run studies of a condition it also studies) where
//   the barrier, or a narrower concept of it, was raised and a tactic applied at the same site on or
//   after that day had one of the given outcomes. Tactics ranked by how many such sites they worked at,
//   with the evidence levels of their MITIGATES links to the barrier or a broader concept.
// param site_id: string, required, example "site:guangdong-provincial-peoples-hospital-guangzhou-china" -- id of the site to find peers for
// param barrier: string, required, example "confidentiality-agreement-delay" -- id, label or IRI of the barrier
// param outcomes: list<string> = ["resolved", "improved"], example ["resolved", "improved"] -- outcomes of APPLIED that count as success
// param limit: integer = 10, example 10 -- how many tactics
// returns: table
MATCH (target:Barrier)
WHERE target.id = $barrier OR target.label = $barrier OR target.iri = $barrier
MATCH (s:Site {id: $site_id})-[:PARTICIPATES_IN]->(:Study)-[:STUDIES]->(:Condition)<-[:STUDIES]-(:Study)<-[:PARTICIPATES_IN]-(o:Site)
WHERE o <> s
WITH DISTINCT target, o
MATCH (o)<-[:WITH_SITE]-(i:Interaction)-[:CONCERNS]->(:Barrier)-[:BROADER*0..]->(target)
MATCH (o)<-[:WITH_SITE]-(j:Interaction)-[a:APPLIED]->(t:Tactic)
WHERE a.outcome IN $outcomes AND j.occurred_at >= i.occurred_at
WITH target, t, count(DISTINCT o) AS sites, count(DISTINCT j) AS successes, collect(DISTINCT a.outcome) AS outcomes
OPTIONAL MATCH (target)-[:BROADER*0..]->(:Barrier)<-[m:MITIGATES]-(t)
RETURN t.id AS tactic_id,
       t.label AS tactic,
       sites,
       successes,
       outcomes,
       collect(DISTINCT m.evidence_level) AS evidence_levels
ORDER BY sites DESC, successes DESC, tactic_id
LIMIT toInteger($limit)
