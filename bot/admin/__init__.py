"""The admin console: a web application for support leads (content, training, deploys), and its accounts."""
