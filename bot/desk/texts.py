"""What the desk says to agents and in the agents' group (the customer's side speaks from bot/replies.py)."""

from __future__ import annotations

# Button payloads: the agents' buttons, and the customer's rating and follow-up answers.
PREFIX = "desk:"
CSAT_PREFIX = "app:csat:"
FOLLOWUP_PREFIX = "app:followup:"

AGENT_WELCOME = (
    "You're set up as an agent. When you claim a ticket in the agents' group, the customer's messages arrive here "
    "and what you write here goes to them.\n"
    "With several customers at once, reply to one of their messages so I know who it's for.\n\n"
    "/close <note> closes the conversation (the customer gets a rating request and a check the next day)\n"
    "/return hands the customer back to the bot\n"
    "/transfer passes the customer to another agent, or back to the queue\n"
    "/note <text> adds an internal note (never shown to the customer)\n"
    "/promise <when> <what> records a promise, e.g. /promise tomorrow 10:00 call you back about the refund\n"
    "/promises lists your open promises; /kept <number> tells the customer one is done\n"
    "/media T000012 sends you a ticket's attachments that are not in its topic\n"
    "/flag <what was wrong> reports the bot's last answer to your customer as wrong (/flag T000012 … for another ticket)\n"
    "/reopen T000012 opens a closed ticket again\n"
    "/block <reason> stops an abusive customer (their tickets close; nothing they send reaches us); "
    "/unblock T000012 lifts it\n"
    "/queue shows who is waiting, most urgent first; /next claims the top\n"
    "/online and /away say whether new requests come to you (away by yourself after a while without activity)\n"
    "/pass hands the customer you were given to the next free agent, or back to the queue\n"
    "/r lists the saved replies; /r <name> sends one; /r <words> finds the best three\n\n"
    "You can send texts, photos, files, voice notes, videos, audio, stickers, locations and albums. "
    "Edit a message you sent and the customer's copy is edited too."
)
NOT_AN_AGENT = "Sorry, this is only for members of the agents' group."
LEFT_THE_GROUP = (
    "You're no longer a member of the agents' group, so this chat is no longer your desk. The customers "
    "you were helping are back in the queue for the team."
)
START_PRIVATE_FIRST = "Open a private chat with me and press Start first, then tap Claim again."
ALREADY_CLAIMED = "Already claimed by {agent}."
NO_CUSTOMER = "You're not talking with any customer right now. Claim a ticket in the agents' group first."
WHICH_CUSTOMER = (
    "You're helping {count} customers. Reply to one of their messages (swipe left on it) so I know who this is for."
)
NOT_YOURS = "That customer's conversation isn't yours any more (it was closed or handed on), so nothing was sent."
CLAIMED_INTRO = (
    "You're now talking with {name} about {ticket}. Write here to reply; they see your first name.\n\n{recent}"
)
CLAIMED_NOTICE = "✋ Claimed by {agent}."
CLOSED_NOTICE = "✅ Closed by {agent}{note}."
RETURNED_NOTICE = "↩️ {agent} handed {name} back to the bot."
CANCELLED_NOTICE = "🚪 {name} left the queue and is back with the bot. The ticket stays open."
CSAT_NOTICE = "⭐ Rated {score}/5."
COMMENT_NOTICE = "💬 Comment: {comment}"
NOTE_SAVED = "📝 Note saved on {ticket} (never shown to the customer)."
CLOSED_AGENT = "Closed {ticket}. The customer gets a rating request now and a check tomorrow."
RETURNED_AGENT = "{name} is back with the bot; {ticket} stays open."
QUEUE_EMPTY = "Nobody is waiting."
RELAY_HEADER = "💬 {name} · {ticket}"
EDITED = "✏️ edited"
STILL_WAITING = "⏰ {name} has been waiting {minutes} min."
REOPENED_AGENT = "↪️ {name} wrote again soon after you closed {ticket}, so the conversation is open with you again."
REOPENED_NOTICE = "↪️ Reopened: {name} wrote again after the close."
TRANSFER_CHOOSE = "Pass {name} ({ticket}) to whom?"
TRANSFER_NOBODY = "No other agent has a private chat with me yet, so you can only put {name} back in the queue."
TRANSFERRED_NOTICE = "🔀 {old} passed the conversation to {new}."
REQUEUED_NOTICE = "🔀 {old} put {name} back in the queue."
TRANSFERRED_AGENT = "{name} ({ticket}) is now with {new}."
PROMISE_USAGE = (
    "Usage: /promise <when> <what>, e.g. /promise in 2h call you back, or /promise 2026-12-01 16:00 refund the fee."
)
PROMISE_SAVED = "🤝 Promise #{number} on {ticket}: {what}, due {due}. I'll remind you then."
PROMISE_NOTICE = "🤝 {agent} promised: {what}, due {due}."
PROMISE_DUE = "⏰ Promise #{number} on {ticket} is due: {what}. When it's done, /kept {number}."
PROMISE_KEPT_NOTICE = "✅ {agent} kept promise #{number}: {what}."
NO_PROMISES = "You have no open promises."
TOPIC_CLOSED = (
    "{ticket} is closed, so what is written here no longer reaches the customer. /reopen {ticket} opens it again."
)
REOPENED_BY = "↪️ {agent} reopened {ticket}."
REOPENED_TICKET = (
    "{ticket} is open again: what the team writes in its topic reaches the customer, or Claim it to talk in private."
)
REOPEN_USAGE = "Usage: /reopen T000012, for a closed ticket."
EDIT_NOT_SENT = "That message didn't go to a customer you're helping now, so there is no copy of it to edit."
REFUSED = "⚠️ Your {what} didn't reach {name} ({ticket}): Telegram refused it ({reason})."
ADMINS_ONLY = "Only the agents' group admins can do that."
RELEASED_NOTICE = "🔓 {admin} released {ticket} from {agent}: it is back in the queue."
SUMMARY = (
    "📊 {waiting} waiting (longest {longest} min) · {handled} with an agent · today: {closed} closed, rating {rating}"
)
SAVED_LIST = "Saved replies, for {customer}:"
SAVED_BEST = "The best matches, for {customer} (nothing is sent until you press one):"
SAVED_WHICH = "You're helping several customers: whom is “{name}” for?"
SAVED_SENT = "Sent “{name}” to {customer} ({ticket})."
SAVED_NONE = "There are no saved replies yet: an admin adds them in the console (Saved replies)."
SAVED_NO_MATCH = "No saved reply matches “{words}”. /r lists them all."
SAVED_LATE = "That conversation has ended or is no longer yours, so nothing was sent."
SAVED_GONE = "That saved reply no longer exists, so nothing was sent."
BLOCK_USAGE = (
    "Usage: /block <reason>, in a ticket's topic or here for the customer you're helping (with several, as a reply "
    "to one of their messages). Their open tickets close with the reason; they are told once, and nothing they send "
    "reaches the team or the bot until /unblock in their ticket's topic."
)
UNBLOCK_USAGE = (
    "Usage: /unblock T000012 (here or in the agents' group) or /unblock in a blocked customer's ticket topic; the "
    "console's Blocked customers page lists them."
)
BLOCKED_NOTICE = (
    "⛔ {agent} blocked {name}: {reason}. What they send is kept but no longer reaches the team or the bot; their "
    "open tickets are closed. /unblock {ticket} lifts it."
)
BLOCKED_AGENT = "⛔ {name} is blocked ({reason}); closed: {closed}. /unblock {ticket} lifts it."
ALREADY_BLOCKED = "{name} is blocked already. /unblock {ticket} lifts it."
NOT_BLOCKED = "{name} is not blocked."
UNBLOCKED_NOTICE = "✅ {agent} unblocked {name}: what they send reaches the bot again."
UNBLOCKED = "✅ {name} ({ticket}) is unblocked: what they send reaches the bot again."
REPLY_REMINDER = (
    "⏰ {name} ({ticket}) has been waiting {minutes} min for a reply from you. Answer their last message here, or "
    "/transfer if you can't get to it now."
)
REPLY_OVERDUE_NOTICE = (
    "⚠️ For the admins: {name} has had no reply from {agent} for {minutes} min. /release {ticket} puts them back in "
    "the queue for someone else."
)
# Queue, presence and assignment (bot/desk/assign.py, bot/desk/presence.py).
ONLINE = (
    "🟢 You're online: new requests come to you in turn{limit}. /away stops them; after {minutes} min without "
    "activity you're set away by yourself."
)
ONLINE_LIMIT = ", up to {limit} conversations at once"
AWAY = (
    "🌙 You're away: no new requests come to you. The customers you're helping stay with you. /online when you're back."
)
AWAY_AUTO = (
    "🌙 You've been set away after {minutes} min without activity, so no new requests come to you. "
    "/online when you're back."
)
ASSIGNED_CARD = "🎫 Assigned to you: {name} · {ticket} · {priority} priority · {reason}\n\n"
OFFERED_CARD = (
    "🎫 {name} is waiting · {ticket} · {priority} priority · {reason}\n{recent}\n\n"
    "Tap Claim to take it (it goes to another agent if nobody does within {seconds} s; the topic has the whole card)."
)
ASSIGNED_NOTICE = "🤖 Assigned to {agent}."
ASSIGNED_LINE = "\n\n✋ With {agent}."
PASSED_NOTICE = "🔀 {old} passed {name} back: {where}."
PASSED_AGENT = "{name} ({ticket}) is passed on: {where}."
PASSED_TO = "now with {agent}"
PASSED_QUEUE = "back in the queue"
NEXT_EMPTY = "Nobody is waiting."
NEXT_CLAIMED = "You claimed {ticket} ({name}), the top of the queue."
PASS_USAGE = "You're not helping anyone to pass back."
QUEUE_LINE = "{number}. {ticket} · {priority} · {name} · waiting {minutes} min · {reason}"
