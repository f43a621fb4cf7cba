// name: barrier-mitigations
// group: Barriers and tactics
// title: Tactics that mitigate a barrier, with their evidence
// description: The tactics linked by MITIGATES to the barrier or to one of its broader concepts, nearest
//   concept first, with the evidence level, source and expected effect of each link.
// param barrier: string, required, example "repeated-contract-revisions" -- id, label or IRI of the barrier
// returns: graph
MATCH (b:Barrier)
WHERE b.id = $barrier OR b.label = $barrier OR b.iri = $barrier
MATCH p = (b)-[:BROADER*0..]->(g:Barrier)<-[m:MITIGATES]-(t:Tactic)
RETURN t.id AS tactic_id,
       t.label AS tactic,
       g.label AS via_concept,
       length(p) - 1 AS levels_up,
       m.evidence_level AS evidence_level,
       m.source AS source,
       m.effect AS effect,
       p AS path
ORDER BY levels_up, evidence_level, tactic_id
