"""What the app says on its own, when Rasa is not the one answering."""

HELP = (
    "I'm the shop's support assistant. Just write to me in your own words, for example:\n"
    "• \"Where is my order?\"\n"
    "• \"How do I return something?\"\n"
    "• \"My parcel arrived damaged\"\n"
    "• \"I'd like to talk to a person\"\n\n"
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
