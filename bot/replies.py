"""What the app says on its own, when Rasa is not the one answering."""

HELP = (
    "I'm the shop's support assistant. Just write to me in your own words, for example:\n"
    '• "Where is my order?"\n'
    '• "How do I return something?"\n'
    '• "My parcel arrived damaged"\n'
    '• "I\'d like to talk to a person"\n\n'
    "Commands: /start to begin again, /tickets for your complaints and where they stand, /mydata for a copy of "
    "everything we store about you, /forget to have us delete it, /help for this message."
)

MYDATA_CAPTION = (
    "Here is everything we store about you: your profile, our conversation with every message in and out, "
    "and your complaints. It's a JSON file you can open with any text editor."
)
MYDATA_FILE_NAME = "my-data.json"

FORGET_CONFIRM = (
    "Shall I delete everything we store about you? That is your profile, our conversation and its history. "
    "Your complaints are kept for our records, but without your name, contact, order number or description. "
    "This can't be undone."
)
FORGET_YES = "Yes, delete my data"
FORGET_NO = "No, keep it"
FORGOTTEN = (
    "Done: I've deleted your data. Only this message is kept, as the record that your request was carried out. "
    "You can write to me any time to start afresh."
)
NOTHING_DELETED = "Nothing was deleted."

TROUBLE = (
    "I'm sorry, I'm having trouble answering right now. Your message is saved and our team can see it. "
    "Please give me a minute and try again."
)

UNKNOWN_COMMAND = (
    "Sorry, I don't know the command {command}. You don't need commands with me: just tell me what you need "
    "in your own words. /help shows a few examples."
)

LONG_MESSAGE = (
    "Thank you for the detailed message, I've saved all of it. I understand short messages best: could you "
    "tell me in a sentence or two what you need, so I can help you straight away?"
)

EXPIRED_BUTTON = "Sorry, that button is no longer valid. Just tell me what you need."

MEDIA = {
    "sticker": "Thanks for the sticker! I understand text best: how can I help you?",
    "voice": "Thanks for the voice message, I've saved it. I can't listen to audio yet: could you type what you need?",
    "video_note": "Thanks for the video, I've saved it. I can't watch videos yet: could you type what you need?",
    "video": "Thanks for the video, I've saved it. I can't watch videos yet: could you type what you need?",
    "audio": "Thanks for the audio, I've saved it. I can't listen to audio yet: could you type what you need?",
    "document": "Thanks for the file, I've saved it. I can't open files myself: could you tell me in words what it is about?",
    "location": "Thanks for the location, I've saved it. Could you tell me in words what you need?",
    "contact": "Thanks for the contact, I've saved it. Could you tell me in words what you need?",
}
OTHER_MEDIA = "Thanks, I've saved that. I understand text best: could you tell me in words what you need?"

# --- A person from the team (the agent desk) ---------------------------------
HANDOFF_QUEUED = (
    "I've asked a person from our team to take over. They'll see everything you've told me, so you won't need "
    "to repeat anything. You're number {position} in line{wait}. Anything you write here in the meantime reaches "
    "them. /cancel takes you back to me."
)
HANDOFF_WAIT = ", so someone should be with you in {wait}"  # {wait}: "about 15 minutes", for this place in line
# When there is no honest estimate (nobody has been picked up for a while, bot/storage/waits.py).
HANDOFF_NO_ESTIMATE = (
    "; our team is very busy right now, so I can't say yet how long it will take, but you keep your place"
)
HANDOFF_BOT_DOWN = "I'm having trouble answering right now, so I've asked a person from our team to help you instead. "
HANDOFF_STILL_QUEUED = (
    "You're still in line for a person from our team: number {position}{wait}. Everything you write here reaches them."
)
HANDOFF_WITH_AGENT = "{agent} from our team is already with you in this chat."
HANDOFF_NO_DESK = (
    "I'd like to get a person for you, but I can't reach our team from this chat right now. Your request is saved "
    "as ticket {ticket}, and we'll reply to you here as soon as we can."
)
CLAIMED = "Hi, this is {agent} from the Northwind Goods team. I've read your conversation so far and I'm here to help."
CLOSED = "{agent} has closed this conversation. Thank you for your patience! I'm back to help with anything else."
CSAT_QUESTION = "How did we do? Tap a number from 1 (poor) to 5 (excellent)."
CSAT_THANKS = "Thank you for rating us {score} out of 5. If you'd like to add a comment, just write it here."
CSAT_COMMENT_THANKS = "Thank you, I've passed your comment on to the team."
RETURNED = "You're back with the assistant. Your ticket {ticket} stays open with our team. If you need a person again, just say so."
CANCELLED = "Okay, you've left the queue and you're back with me. Your ticket {ticket} stays open, and our team will still look at it."
NOTHING_TO_CANCEL = "You're not waiting for a person right now, so there's nothing to cancel."
FOLLOWUP = "Hi {name}, yesterday our team helped you with ticket {ticket}. Is everything OK now?"
FOLLOWUP_OK = "Yes, all sorted"
FOLLOWUP_HELP = "No, I still need help"
FOLLOWUP_GLAD = "Great, I'm glad it's sorted. Thank you for letting us know!"
HANDOFF_AFTER_HOURS = (
    "Our team isn't working right now; they're back {back}. I've passed everything on to them as ticket {ticket}, "
    "and you'll be among the first they help. Anything you write here in the meantime reaches them. "
    "/cancel takes you back to me."
)
WAIT_UPDATE = "An update while you wait: you're number {position} in line{wait}. Thank you for your patience."
REOPENED = "{agent} from our team is back with you, as you wrote again so soon after we finished."
TRANSFERRED = "I'm passing you to {agent}, who will take it from here. They can see our whole conversation."
BACK_IN_QUEUE = "I'm passing your conversation to the next person available on our team. They'll see everything so far."
PROMISED = "{agent} has made a note to {what}, by {due}. We'll let you know here when it's done."
PROMISE_KEPT = "Good news about ticket {ticket}: {agent} has done what they promised ({what})."
HOLD_QUEUED = (
    "Thank you for bearing with us: you haven't been forgotten. You're number {position} in line{wait}, and "
    "everything you've written here has reached our team."
)
HOLD_WITH_AGENT = (
    "Thank you for bearing with us: {agent} has your messages and will reply here as soon as they can. "
    "You haven't been forgotten."
)
HOLD_AFTER_HOURS = (
    "Thank you for bearing with us. Our team isn't working right now; they're back {back}. Everything you've "
    "written is saved with ticket {ticket}, and they'll reply to you here."
)

BLOCKED = (
    "We're sorry, but we have had to close this conversation, and our team won't see further messages here. "
    "Thank you for understanding. /mydata and /forget still work for your data."
)
