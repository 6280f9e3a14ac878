"""Support mail: replying to the customer who raised a request by email."""
