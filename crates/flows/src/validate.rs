//! The rules a flow must hold before it is saved, beyond its JSON shape:
//! ranges and keys of each node, then the graph (every edge leads to a
//! node, every node is reachable, no loop spins without waiting for the
//! caller, every node can reach an end).

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::condition::{Condition, is_variable_name};
use crate::error::FlowError;
use crate::flow::Flow;
use crate::node::Node;

/// Timeouts, in seconds.
const TIMEOUT_SECONDS: std::ops::RangeInclusive<u32> = 1..=60;
/// Retries of a menu or digit collection.
const MAX_RETRIES: u32 = 5;
/// Digits a `collect_digits` node may collect.
const MAX_DIGITS: u32 = 32;
/// Queue priorities.
const MAX_PRIORITY: u32 = 100;

/// Checks every rule, reporting the first fault: node rules in node id
/// order, then the graph rules in the order of the module documentation.
pub(crate) fn check(flow: &Flow) -> Result<(), FlowError> {
    for (id, node) in flow.nodes() {
        check_node(node).map_err(|(field, message)| FlowError::at(id, Some(&field), message))?;
    }
    if flow.node(flow.start()).is_none() {
        return Err(FlowError::flow(
            Some("start"),
            format!("start node {:?} is not a node of the flow", flow.start()),
        ));
    }
    check_edges(flow)?;
    check_variables(flow)?;
    check_reachable(flow)?;
    check_spinning_loops(flow)?;
    check_ends(flow)
}

/// The ranges and keys of one node: on failure, the field and message.
pub(crate) fn check_node(node: &Node) -> Result<(), (String, String)> {
    match node {
        Node::Menu(menu) => {
            if menu.options.is_empty() {
                return Err(fault("options", "a menu needs at least one option".into()));
            }
            for key in menu.options.keys() {
                if !is_dtmf_key(key) {
                    return Err((
                        format!("options.{key}"),
                        format!("option {key:?} is not a DTMF key (0-9, * or #)"),
                    ));
                }
            }
            check_timeout(menu.timeout_seconds)?;
            check_retries(menu.max_retries)
        }
        Node::CollectDigits(collect) => {
            if !is_variable_name(&collect.variable) {
                return Err(fault(
                    "variable",
                    format!(
                        "variable {:?} must be 1 to 64 letters, digits or \"_\"",
                        collect.variable
                    ),
                ));
            }
            if !(1..=MAX_DIGITS).contains(&collect.max_length) {
                return Err(fault(
                    "max_length",
                    format!(
                        "max_length must be 1 to {MAX_DIGITS}, not {}",
                        collect.max_length
                    ),
                ));
            }
            if collect.min_length == 0 {
                return Err(fault("min_length", "min_length must be at least 1".into()));
            }
            if collect.min_length > collect.max_length {
                return Err(fault(
                    "min_length",
                    format!(
                        "min_length {} is more than max_length {}",
                        collect.min_length, collect.max_length
                    ),
                ));
            }
            if let Some(terminator) = &collect.terminator
                && !matches!(terminator.as_str(), "*" | "#")
            {
                return Err(fault(
                    "terminator",
                    format!("terminator {terminator:?} must be \"*\" or \"#\""),
                ));
            }
            check_timeout(collect.timeout_seconds)?;
            check_retries(collect.max_retries)
        }
        Node::OfferCallback(offer) => {
            if !is_dtmf_key(&offer.accept_digit) {
                return Err(fault(
                    "accept_digit",
                    format!(
                        "accept_digit {:?} is not a DTMF key (0-9, * or #)",
                        offer.accept_digit
                    ),
                ));
            }
            check_timeout(offer.timeout_seconds)
        }
        Node::Enqueue(enqueue) => match enqueue.priority {
            Some(priority) if priority > MAX_PRIORITY => Err(fault(
                "priority",
                format!("priority must be 0 to {MAX_PRIORITY}, not {priority}"),
            )),
            _ => Ok(()),
        },
        Node::Play(_)
        | Node::Branch(_)
        | Node::SetLanguage(_)
        | Node::Transfer(_)
        | Node::Voicemail(_)
        | Node::Hangup(_) => Ok(()),
    }
}

fn fault(field: &str, message: String) -> (String, String) {
    (field.to_owned(), message)
}

fn check_timeout(seconds: u32) -> Result<(), (String, String)> {
    if TIMEOUT_SECONDS.contains(&seconds) {
        Ok(())
    } else {
        Err(fault(
            "timeout_seconds",
            format!(
                "timeout_seconds must be {} to {}, not {seconds}",
                TIMEOUT_SECONDS.start(),
                TIMEOUT_SECONDS.end()
            ),
        ))
    }
}

fn check_retries(retries: u32) -> Result<(), (String, String)> {
    if retries <= MAX_RETRIES {
        Ok(())
    } else {
        Err(fault(
            "max_retries",
            format!("max_retries must be 0 to {MAX_RETRIES}, not {retries}"),
        ))
    }
}

/// One key of a telephone keypad: `0`–`9`, `*` or `#`.
pub(crate) fn is_dtmf_key(key: &str) -> bool {
    matches!(key.as_bytes(), [b'0'..=b'9' | b'*' | b'#'])
}

/// Every `next`, option, `on_failure`, `otherwise` and `declined` leads to
/// a node of the flow.
fn check_edges(flow: &Flow) -> Result<(), FlowError> {
    for (id, node) in flow.nodes() {
        for edge in node.edges() {
            if flow.node(edge.target).is_none() {
                return Err(FlowError::at(
                    id,
                    Some(&edge.field),
                    format!("{} leads to unknown node {:?}", edge.label, edge.target),
                ));
            }
        }
    }
    Ok(())
}

/// Branches test only variables some `collect_digits` node sets (a typo
/// would otherwise never match).
fn check_variables(flow: &Flow) -> Result<(), FlowError> {
    let collected: BTreeSet<&str> = flow
        .nodes()
        .filter_map(|(_, node)| match node {
            Node::CollectDigits(collect) => Some(collect.variable.as_str()),
            _ => None,
        })
        .collect();
    for (id, node) in flow.nodes() {
        let Node::Branch(branch) = node else { continue };
        for (index, case) in branch.conditions.iter().enumerate() {
            if let Condition::Variable { name, .. } = &case.when
                && !collected.contains(name.as_str())
            {
                return Err(FlowError::at(
                    id,
                    Some(&format!("conditions[{index}].when.variable")),
                    format!(
                        "condition {} tests variable {name:?}, which no collect_digits node sets",
                        index + 1
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Every node can be reached from the start node.
fn check_reachable(flow: &Flow) -> Result<(), FlowError> {
    let mut reached = BTreeSet::from([flow.start()]);
    let mut queue = VecDeque::from([flow.start()]);
    while let Some(id) = queue.pop_front() {
        let Some(node) = flow.node(id) else { continue };
        for edge in node.edges() {
            if reached.insert(edge.target) {
                queue.push_back(edge.target);
            }
        }
    }
    match flow.nodes().find(|(id, _)| !reached.contains(id)) {
        Some((id, _)) => Err(FlowError::at(
            id,
            None,
            format!("cannot be reached from the start node {:?}", flow.start()),
        )),
        None => Ok(()),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Visit {
    OnPath,
    Done,
}

/// No cycle runs through nodes that never wait for the caller (`play`,
/// `branch`, `set_language`): a call on it would go round forever. A cycle
/// through a `menu`, `collect_digits` or `offer_callback` is fine (the
/// caller picks the way out).
fn check_spinning_loops(flow: &Flow) -> Result<(), FlowError> {
    let mut visits = HashMap::new();
    for (id, node) in flow.nodes() {
        if node.waits_for_input() || visits.contains_key(id) {
            continue;
        }
        let mut path = Vec::new();
        if let Some(cycle) = spinning_cycle(flow, id, &mut visits, &mut path) {
            let shown: Vec<String> = cycle.iter().map(|id| format!("{id:?}")).collect();
            return Err(FlowError::at(
                cycle[0],
                None,
                format!(
                    "the loop {} never waits for caller input",
                    shown.join(" -> ")
                ),
            ));
        }
    }
    Ok(())
}

/// Depth-first search from `id` over nodes that do not wait for input:
/// the first cycle found, from its first node back to it.
fn spinning_cycle<'a>(
    flow: &'a Flow,
    id: &'a str,
    visits: &mut HashMap<&'a str, Visit>,
    path: &mut Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    visits.insert(id, Visit::OnPath);
    path.push(id);
    let node = flow.node(id)?;
    for edge in node.edges() {
        let target = edge.target;
        if flow.node(target).is_none_or(Node::waits_for_input) {
            continue;
        }
        match visits.get(target) {
            Some(Visit::OnPath) => {
                let from = path.iter().position(|on_path| *on_path == target)?;
                let mut cycle = path[from..].to_vec();
                cycle.push(target);
                return Some(cycle);
            }
            Some(Visit::Done) => {}
            None => {
                if let Some(cycle) = spinning_cycle(flow, target, visits, path) {
                    return Some(cycle);
                }
            }
        }
    }
    path.pop();
    visits.insert(id, Visit::Done);
    None
}

/// From every node, some path ends the call.
fn check_ends(flow: &Flow) -> Result<(), FlowError> {
    let mut leads_to: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, node) in flow.nodes() {
        for edge in node.edges() {
            leads_to.entry(edge.target).or_default().push(id);
        }
    }
    let mut ending: BTreeSet<&str> = flow
        .nodes()
        .filter(|(_, node)| node.can_end_flow())
        .map(|(id, _)| id)
        .collect();
    let mut queue: VecDeque<&str> = ending.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        for &from in leads_to.get(id).map(Vec::as_slice).unwrap_or_default() {
            if ending.insert(from) {
                queue.push_back(from);
            }
        }
    }
    match flow.nodes().find(|(id, _)| !ending.contains(id)) {
        Some((id, _)) => Err(FlowError::at(
            id,
            None,
            "no path from this node ends the call (enqueue, transfer, voicemail, hangup \
             or an accepted offer_callback)",
        )),
        None => Ok(()),
    }
}
