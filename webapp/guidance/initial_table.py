"""The guidance table SkinSight ships with (version 1 of each diagnosis), written for this project from the
public sources listed with each entry. Clinicians replace it through the approval workflow; the migration
that loads it marks it as shipped, not as reviewed by anyone at the deploying site."""

INITIAL_GUIDANCE = {
    "akiec": {
        "what_it_is": (
            "A rough, scaly patch on sun-damaged skin (actinic keratosis), or a flat red scaly patch "
            "(Bowen's disease). Both are caused by long sun exposure; a small share can turn into a "
            "squamous cell skin cancer over time, so they are treated or watched."
        ),
        "first_line": (
            "A clinician confirms the diagnosis, often by examination alone. Options include freezing "
            "(cryotherapy), prescription creams applied at home (such as 5-fluorouracil or imiquimod), "
            "photodynamic therapy, or removal. Daily sun protection helps prevent new patches."
        ),
        "see_a_doctor": (
            "See a GP or dermatologist in the coming weeks. Go sooner if the patch grows quickly, "
            "becomes thick, tender, bleeds or forms an ulcer that does not heal."
        ),
        "sources": (
            "NHS: Actinic keratoses (solar keratoses) https://www.nhs.uk/conditions/actinic-keratoses/\n"
            "NHS: Bowen's disease https://www.nhs.uk/conditions/bowens-disease/\n"
            "DermNet: Actinic keratosis https://dermnetnz.org/topics/actinic-keratosis"
        ),
    },
    "bcc": {
        "what_it_is": (
            "Basal cell carcinoma, the most common skin cancer. It grows slowly and very rarely spreads "
            "to other organs, but it keeps growing into the skin around it if it is not treated."
        ),
        "first_line": (
            "A clinician confirms it, usually with a biopsy. Surgical removal is the usual treatment; "
            "others are Mohs surgery for the face, curettage, freezing, creams or photodynamic therapy "
            "for thin superficial ones, and radiotherapy when surgery is not suitable."
        ),
        "see_a_doctor": (
            "Book an appointment with a GP or dermatologist soon (within weeks). Go sooner if it bleeds, "
            "grows quickly or is near the eye, nose or ear."
        ),
        "sources": (
            "NHS: Non-melanoma skin cancer https://www.nhs.uk/conditions/non-melanoma-skin-cancer/\n"
            "DermNet: Basal cell carcinoma https://dermnetnz.org/topics/basal-cell-carcinoma\n"
            "NICE CSG8: Improving outcomes for people with skin tumours https://www.nice.org.uk/guidance/csg8"
        ),
    },
    "bkl": {
        "what_it_is": (
            "A benign keratosis: most often a seborrhoeic keratosis (a harmless, waxy, 'stuck-on' growth "
            "common with age), or a solar lentigo or lichen-planus-like keratosis. These are not cancers."
        ),
        "first_line": (
            "No treatment is needed. If one is itchy, catches on clothing or is unsightly, a clinician "
            "can remove it by freezing, curettage or shave removal."
        ),
        "see_a_doctor": (
            "See a clinician if you are unsure what it is, or if it changes quickly, bleeds without "
            "injury or looks different from your other spots: a melanoma can look like a keratosis."
        ),
        "sources": (
            "NHS: Seborrhoeic keratosis https://www.nhs.uk/conditions/seborrhoeic-keratosis/\n"
            "DermNet: Seborrhoeic keratosis https://dermnetnz.org/topics/seborrhoeic-keratosis"
        ),
    },
    "df": {
        "what_it_is": (
            "A dermatofibroma: a common, harmless firm bump in the skin, often on the legs, sometimes "
            "after a small injury or insect bite. It dimples inward when pinched."
        ),
        "first_line": (
            "No treatment is needed. It can be removed surgically if it is bothersome, leaving a scar."
        ),
        "see_a_doctor": (
            "See a clinician if it grows, changes colour, bleeds or becomes painful, or if you are not "
            "sure it is a dermatofibroma."
        ),
        "sources": "DermNet: Dermatofibroma https://dermnetnz.org/topics/dermatofibroma",
    },
    "mel": {
        "what_it_is": (
            "Melanoma, a skin cancer of the pigment cells. It can spread to other parts of the body, "
            "and it is most curable when it is found and removed early."
        ),
        "first_line": (
            "Urgent assessment by a dermatologist, who examines it with a dermatoscope and removes it "
            "whole for a biopsy (excision). Further treatment depends on the biopsy result."
        ),
        "see_a_doctor": (
            "See a doctor urgently, within two weeks, or sooner if it is bleeding or growing. Do not "
            "wait for it to change."
        ),
        "sources": (
            "NHS: Melanoma skin cancer https://www.nhs.uk/conditions/melanoma-skin-cancer/\n"
            "NICE NG14: Melanoma, assessment and management https://www.nice.org.uk/guidance/ng14\n"
            "NICE NG12: Suspected cancer, recognition and referral https://www.nice.org.uk/guidance/ng12"
        ),
    },
    "nv": {
        "what_it_is": (
            "A melanocytic naevus: an ordinary mole, a harmless cluster of pigment cells. Most adults "
            "have many."
        ),
        "first_line": (
            "No treatment is needed. Check your moles now and then; photographs over time help to see "
            "change. Protect your skin from sunburn."
        ),
        "see_a_doctor": (
            "See a clinician if a mole changes in size, shape or colour, has an irregular edge or "
            "several colours, is larger than 6 mm, bleeds, itches or crusts, or looks unlike your other "
            "moles; a new mole in adulthood is also worth showing."
        ),
        "sources": (
            "NHS: Moles https://www.nhs.uk/conditions/moles/\n"
            "DermNet: Melanocytic naevus https://dermnetnz.org/topics/melanocytic-naevus"
        ),
    },
    "vasc": {
        "what_it_is": (
            "A vascular lesion: a spot made of small blood vessels, such as a cherry angioma, an "
            "angiokeratoma or a pyogenic granuloma. Most are harmless."
        ),
        "first_line": (
            "Usually no treatment is needed. A clinician can remove one that bleeds or bothers you, with "
            "laser, electrocautery or surgery."
        ),
        "see_a_doctor": (
            "See a clinician if it bleeds repeatedly, grows quickly, or is dark and you are not sure "
            "it is a blood-vessel spot."
        ),
        "sources": (
            "DermNet: Cherry angioma https://dermnetnz.org/topics/cherry-angioma\n"
            "DermNet: Pyogenic granuloma https://dermnetnz.org/topics/pyogenic-granuloma"
        ),
    },
}
